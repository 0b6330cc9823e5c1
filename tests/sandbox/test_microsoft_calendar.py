"""Outlook calendar through Graph against the sandbox: series, exceptions, calendarView delta, events."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.runner import SandboxProcess

from .microsoft_client import Graph, graph_for

WINDOW = "startDateTime=2026-11-30T00:00:00Z&endDateTime=2027-01-31T00:00:00Z"
SMALL_PAGES = {"Prefer": "odata.maxpagesize=2"}


@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, "ana@acme.test")


def put_event(sandbox: SandboxProcess, **spec: Any) -> dict[str, Any]:
    result: dict[str, Any] = sandbox.control("POST", "/accounts/microsoft/ana@acme.test/events", json=spec)
    return result


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_calendar_view_delta_round_trip_with_a_series(sandbox: SandboxProcess, graph: Graph) -> None:
    series = put_event(sandbox, subject="Crew standup", start="2026-12-01T09:00:00", end="2026-12-01T09:30:00",
                       time_zone="America/Chicago", rrule="FREQ=WEEKLY;COUNT=6", private=True)
    single = put_event(sandbox, subject="Site visit", start="2026-12-03T14:00:00", end="2026-12-03T15:00:00",
                       time_zone="America/Chicago", location="12 Elm St")
    occurrences = graph.ok("GET", f"me/events/{series['id']}/instances?{WINDOW}")["value"]
    assert len(occurrences) == 6
    moved, cancelled = occurrences[1], occurrences[2]

    patched = graph.ok("PATCH", f"me/events/{moved['id']}", json={
        "start": {"dateTime": "2026-12-09T11:00:00", "timeZone": "Central Standard Time"},
        "end": {"dateTime": "2026-12-09T11:30:00", "timeZone": "Central Standard Time"}})
    assert patched["type"] == "exception" and patched["start"]["dateTime"] == "2026-12-09T17:00:00.0000000"
    assert graph.request("DELETE", f"me/events/{cancelled['id']}").status_code == 204

    items, delta_link = graph.pages(f"me/calendarView/delta?{WINDOW}", headers=SMALL_PAGES)
    assert delta_link
    listed = by_id(items)
    assert len(items) == 6  # five left of the series, one single event
    assert cancelled["id"] not in listed
    assert listed[moved["id"]]["type"] == "exception"
    assert listed[moved["id"]]["originalStart"] == "2026-12-08T15:00:00Z"
    first = listed[occurrences[0]["id"]]
    assert first["type"] == "occurrence" and first["seriesMasterId"] == series["id"]
    assert first["sensitivity"] == "private" and first["showAs"] == "busy"
    assert first["start"] == {"dateTime": "2026-12-01T15:00:00.0000000", "timeZone": "UTC"}
    assert first["originalStartTimeZone"] == "America/Chicago"
    assert listed[single["id"]]["type"] == "singleInstance"
    assert listed[single["id"]]["location"]["displayName"] == "12 Elm St"

    quiet, delta_link = graph.pages(delta_link)
    assert quiet == []

    sandbox.control("PATCH", f"/accounts/microsoft/ana@acme.test/events/{single['id']}",
                    json={"subject": "Moved visit"})
    sandbox.control("DELETE", f"/accounts/microsoft/ana@acme.test/events/{occurrences[3]['id']}")
    changes, delta_link = graph.pages(delta_link, headers=SMALL_PAGES)
    assert [c["subject"] for c in changes if "@removed" not in c] == ["Moved visit"]
    assert [c["id"] for c in changes if "@removed" in c] == [occurrences[3]["id"]]

    sandbox.control("POST", "/accounts/microsoft/ana@acme.test/expire-sync-state")
    expired = graph.get(delta_link)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "SyncStateNotFound"


def test_deleting_a_series_removes_every_occurrence_from_the_delta(sandbox: SandboxProcess, graph: Graph) -> None:
    series = put_event(sandbox, subject="Weekly", start="2026-12-01T09:00:00", end="2026-12-01T10:00:00",
                       rrule="FREQ=WEEKLY;COUNT=3")
    items, delta_link = graph.pages(f"me/calendarView/delta?{WINDOW}")
    assert len(items) == 3
    graph.ok("DELETE", f"me/events/{series['id']}")
    changes, _ = graph.pages(delta_link)
    assert sorted(c["id"] for c in changes if "@removed" in c) == sorted(i["id"] for i in items)


def test_occurrences_follow_daylight_saving_time(sandbox: SandboxProcess, graph: Graph) -> None:
    series = put_event(sandbox, subject="Early crew", start="2027-03-09T07:00:00", end="2027-03-09T08:00:00",
                       time_zone="America/Chicago", rrule="FREQ=WEEKLY;COUNT=2")
    window = "startDateTime=2027-03-01T00:00:00Z&endDateTime=2027-04-01T00:00:00Z"
    utc = graph.ok("GET", f"me/events/{series['id']}/instances?{window}")["value"]
    assert [o["start"]["dateTime"] for o in utc] == ["2027-03-09T13:00:00.0000000", "2027-03-16T12:00:00.0000000"]
    local = graph.ok("GET", f"me/events/{series['id']}/instances?{window}",
                     headers={"Prefer": 'outlook.timezone="Central Standard Time"'})["value"]
    assert {o["start"]["dateTime"] for o in local} == {"2027-03-09T07:00:00.0000000", "2027-03-16T07:00:00.0000000"}
    assert {o["start"]["timeZone"] for o in local} == {"Central Standard Time"}


def test_create_with_a_transaction_id_is_idempotent(graph: Graph) -> None:
    event = {"subject": "Estimate walk-through", "transactionId": "aspire-appt-42",
             "start": {"dateTime": "2026-12-05T10:00:00", "timeZone": "Pacific Standard Time"},
             "end": {"dateTime": "2026-12-05T11:00:00", "timeZone": "Pacific Standard Time"},
             "body": {"contentType": "text", "content": "Bring the plans"},
             "attendees": [{"emailAddress": {"address": "client@example.com", "name": "Client"}, "type": "required"}]}
    first = graph.post("me/events", json=event)
    again = graph.post("me/events", json=event)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(graph.ok("GET", "me/events")["value"]) == 1
    fetched = graph.ok("GET", f"me/events/{first.json()['id']}",
                       headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert fetched["start"] == {"dateTime": "2026-12-05T10:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert fetched["attendees"][0]["emailAddress"]["address"] == "client@example.com"


def test_patch_with_a_stale_etag_is_refused(graph: Graph) -> None:
    created = graph.ok("POST", "me/events", json={
        "subject": "Mowing", "start": {"dateTime": "2026-12-07T08:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-07T09:00:00", "timeZone": "UTC"}})
    stale = created["@odata.etag"]
    updated = graph.ok("PATCH", f"me/events/{created['id']}", json={"subject": "Mowing (moved)"},
                       headers={"If-Match": stale})
    assert updated["@odata.etag"] != stale
    conflict = graph.request("PATCH", f"me/events/{created['id']}", json={"subject": "Lost update"},
                             headers={"If-Match": stale})
    assert conflict.status_code == 412
    assert conflict.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert graph.request("DELETE", f"me/events/{created['id']}", headers={"If-Match": stale}).status_code == 412
    assert graph.ok("GET", f"me/events/{created['id']}")["subject"] == "Mowing (moved)"


def test_all_day_events_are_floating_dates(sandbox: SandboxProcess, graph: Graph) -> None:
    put_event(sandbox, subject="Holiday", start="2026-12-25", end="2026-12-26", all_day=True)
    items, _ = graph.pages(f"me/calendarView/delta?{WINDOW}",
                           headers={"Prefer": 'outlook.timezone="Eastern Standard Time"'})
    assert items[0]["isAllDay"] is True
    assert items[0]["start"] == {"dateTime": "2026-12-25T00:00:00.0000000", "timeZone": "Eastern Standard Time"}


def test_an_occurrence_renamed_in_outlook_keeps_its_time(sandbox: SandboxProcess, graph: Graph) -> None:
    series = put_event(sandbox, subject="Pruning", start="2026-12-02T13:00:00", end="2026-12-02T14:00:00",
                       time_zone="Eastern Standard Time", rrule="FREQ=DAILY;INTERVAL=2;COUNT=3")
    second = graph.ok("GET", f"me/events/{series['id']}/instances?{WINDOW}")["value"][1]
    sandbox.control("PATCH", f"/accounts/microsoft/ana@acme.test/events/{second['id']}",
                    json={"subject": "Pruning (client away)"})

    renamed = graph.ok("GET", f"me/events/{second['id']}")
    assert renamed["type"] == "exception" and renamed["subject"] == "Pruning (client away)"
    assert renamed["start"] == second["start"] and renamed["end"] == second["end"]
    view = graph.ok("GET", f"me/calendarView?{WINDOW}")["value"]
    assert [(i["subject"], i["start"]["dateTime"]) for i in view] == [
        ("Pruning", "2026-12-02T18:00:00.0000000"),
        ("Pruning (client away)", "2026-12-04T18:00:00.0000000"),
        ("Pruning", "2026-12-06T18:00:00.0000000"),
    ]
    listed = sandbox.control("GET", "/accounts/microsoft/ana@acme.test/events")["events"]
    assert sorted(e["type"] for e in listed) == ["exception", "seriesMaster"]
