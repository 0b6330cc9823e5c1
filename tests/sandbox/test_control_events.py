"""The control API's calendar calls: every malformed one is a 400 (or a 404 for an event that is not
there) with a reason, never a 500, for both emulators; and a series' rule can be changed alone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox.runner import SandboxProcess

PROVIDERS = ("microsoft", "google")
GOOD = {"subject": "Mulch delivery", "start": "2030-12-03T09:00:00", "end": "2030-12-03T10:00:00",
        "time_zone": "America/Chicago"}


@pytest.fixture(params=PROVIDERS)
def events_url(request: pytest.FixtureRequest, sandbox: SandboxProcess) -> str:
    email = f"dana@{request.param}.test"
    sandbox.control("POST", "/accounts", json={"provider": request.param, "email": email})
    return f"/accounts/{request.param}/{email}/events"


MALFORMED_CREATES: list[tuple[str, Any, str]] = [
    ("a list, not an object", [GOOD], "JSON object"),
    ("text, not an object", "an event", "JSON object"),
    ("an unknown key", {**GOOD, "colour": "green"}, "colour"),
    ("no start", {"subject": "x", "end": GOOD["end"]}, "start"),
    ("no end", {"subject": "x", "start": GOOD["start"]}, "end"),
    ("a start that is not a time", {**GOOD, "start": "tuesday morning"}, "'start'"),
    ("a start without a time of day", {**GOOD, "start": "2030-12-03"}, "time of day"),
    ("an end before the start", {**GOOD, "end": "2030-12-03T08:00:00"}, "before"),
    ("an all-day event with times", {**GOOD, "all_day": True}, "a date such as"),
    ("a subject that is a number", {**GOOD, "subject": 7}, "'subject'"),
    ("private as text", {**GOOD, "private": "yes"}, "'private'"),
    ("show_as maybe", {**GOOD, "show_as": "maybe"}, "show_as"),
    ("attendees as text", {**GOOD, "attendees": "ann@example.com"}, "attendees"),
    ("an attendee who is not an address", {**GOOD, "attendees": ["Ann"]}, "attendees"),
    ("an unknown zone", {**GOOD, "time_zone": "Nowhere/Land"}, "Nowhere/Land"),
    ("an empty zone", {**GOOD, "time_zone": " "}, "time_zone"),
    ("a rule that is a number", {**GOOD, "rrule": 5}, "rrule"),
    ("a rule that is not one", {**GOOD, "rrule": "EVERY=TUESDAY"}, "EVERY"),
    ("raw with other keys", {"raw": {"id": "x"}, "subject": "x"}, "raw"),
]


@pytest.mark.parametrize(("what", "body", "reason"), MALFORMED_CREATES, ids=[w for w, _, _ in MALFORMED_CREATES])
def test_a_malformed_create_is_refused_with_its_reason(
    sandbox: SandboxProcess, events_url: str, what: str, body: Any, reason: str
) -> None:
    response = sandbox.control_response("POST", events_url, json=body)
    assert response.status_code == 400, (what, response.status_code, response.text)
    assert reason in response.json()["error"], response.json()
    assert sandbox.control("GET", events_url)["events"] == []


def test_a_body_that_is_not_json_is_refused(sandbox: SandboxProcess, events_url: str) -> None:
    response = sandbox.control_response("POST", events_url, data=b"{not json", headers={
        "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]


MALFORMED_CHANGES: list[tuple[str, Any, str]] = [
    ("a list", [{"subject": "x"}], "JSON object"),
    ("an unknown key", {"colour": "green"}, "colour"),
    ("an end before the start", {"start": "2030-12-03T11:00:00", "end": "2030-12-03T10:30:00"}, "before"),
    ("an end before the event's start", {"end": "2030-12-03T08:00:00"}, "start|time range is empty"),
    ("raw", {"raw": {"id": "x"}}, "raw"),
    ("a start that is not a time", {"start": "soon"}, "'start'"),
    ("an unknown zone", {"start": "2030-12-03T11:00:00", "end": "2030-12-03T12:00:00", "time_zone": "Mars/Base"},
     "Mars/Base"),
]


@pytest.mark.parametrize(("what", "body", "reason"), MALFORMED_CHANGES, ids=[w for w, _, _ in MALFORMED_CHANGES])
def test_a_malformed_change_is_refused_with_its_reason_and_changes_nothing(
    sandbox: SandboxProcess, events_url: str, what: str, body: Any, reason: str
) -> None:
    event = sandbox.control("POST", events_url, json=GOOD)
    before = sandbox.control("GET", events_url)["events"]
    response = sandbox.control_response("PATCH", f"{events_url}/{event['id']}", json=body)
    assert response.status_code == 400, (what, response.status_code, response.text)
    assert re.search(reason, response.json()["error"], re.IGNORECASE), response.json()
    after = sandbox.control("GET", events_url)["events"]
    assert [(e["id"], e.get("etag") or e.get("changeKey")) for e in after] == [
        (e["id"], e.get("etag") or e.get("changeKey")) for e in before]


def test_changing_or_deleting_an_event_that_is_not_there_is_a_404(sandbox: SandboxProcess, events_url: str) -> None:
    for method, body in (("PATCH", {"subject": "x"}), ("DELETE", None)):
        response = sandbox.control_response(method, f"{events_url}/nosuchevent00000", json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"]


def test_an_occurrence_cannot_get_a_rule_of_its_own(sandbox: SandboxProcess, events_url: str) -> None:
    series = sandbox.control("POST", events_url, json={**GOOD, "rrule": "FREQ=DAILY;COUNT=3"})
    listed = sandbox.control("GET", events_url)["events"]
    assert [e["id"] for e in listed] == [series["id"]]
    occurrence = f"{series['id']}_20301204T150000Z"  # 9:00 in Chicago, both providers' id form
    response = sandbox.control_response("PATCH", f"{events_url}/{occurrence}", json={"rrule": "FREQ=WEEKLY"})
    assert response.status_code == 400 and "recurr" in response.json()["error"].lower()


def test_a_series_rule_can_change_without_its_times(sandbox: SandboxProcess, events_url: str) -> None:
    series = sandbox.control("POST", events_url, json={**GOOD, "rrule": "FREQ=DAILY;COUNT=6"})
    changed = sandbox.control("PATCH", f"{events_url}/{series['id']}", json={"rrule": "FREQ=DAILY;COUNT=4"})
    rule = changed.get("recurrence")
    assert rule == ["RRULE:FREQ=DAILY;COUNT=4"] or rule["range"]["numberOfOccurrences"] == 4
    again = sandbox.control("PATCH", f"{events_url}/{series['id']}", json={"rrule": ""})
    assert not again.get("recurrence")
