"""Google Calendar v3 on the sandbox through google-api-python-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.runner import SandboxProcess

from .google_support import check_response, connect, create_account, push_receiver, run, service

ALICE = "alice@greenleaf-landscaping.com"
CHICAGO = "America/Chicago"


@pytest.fixture
def calendar(sandbox: SandboxProcess) -> Iterator[Any]:
    create_account(sandbox, ALICE)
    client = service(sandbox, connect(sandbox, ALICE), "calendar")
    yield client
    client.close()


def timed(start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start, "timeZone": CHICAGO}, "end": {"dateTime": end, "timeZone": CHICAGO},
            **fields}


def list_all(calendar: Any, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every page of events.list; the items and the nextSyncToken of the last page."""
    items: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = run(calendar.events().list(calendarId="primary", pageToken=page_token, **params))
        items += page["items"]
        page_token = page.get("nextPageToken")
        if page_token is None:
            return items, page["nextSyncToken"]


def test_insert_with_a_client_chosen_id_is_safe_to_retry(calendar: Any) -> None:
    body = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", id="aspireappt000142", summary="Site visit")

    created = run(calendar.events().insert(calendarId="primary", body=body))

    assert created["id"] == "aspireappt000142" and created["status"] == "confirmed"
    assert created["start"] == {"dateTime": "2026-12-01T09:00:00-06:00", "timeZone": CHICAGO}
    assert created["organizer"]["email"] == ALICE and created["etag"]
    run(calendar.events().insert(calendarId="primary", body=timed(
        "2026-12-01T11:00:00", "2026-12-01T12:00:00", summary="Made in Google")))
    tagged = run(calendar.events().insert(calendarId="primary", body=timed(
        "2026-12-01T13:00:00", "2026-12-01T14:00:00", summary="Made in Aspire",
        extendedProperties={"private": {"aspireAppointment": "142"}})))
    found, _ = list_all(calendar, privateExtendedProperty="aspireAppointment=142")
    assert [item["id"] for item in found] == [tagged["id"]]
    assert [item["id"] for item in list_all(calendar, q="aspire")[0]] == [tagged["id"]]
    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()
    assert raised.value.status_code == 409
    assert raised.value.error_details[0]["message"] == "The requested identifier already exists."
    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body={**body, "id": "Not_Base32hex"}).execute()
    assert raised.value.status_code == 400


def test_sync_tokens_follow_a_recurring_series_and_its_exceptions(calendar: Any) -> None:
    events = calendar.events()
    single = run(events.insert(calendarId="primary", body=timed("2026-10-19T08:00:00", "2026-10-19T08:30:00",
                                                               summary="Estimate")))
    _, token = list_all(calendar)
    # Weekly at 9:00 Chicago time across the end of daylight saving time (1 Nov 2026).
    series = run(events.insert(calendarId="primary", body=timed(
        "2026-10-20T09:00:00", "2026-10-20T10:00:00", summary="Crew meeting",
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE;TZID=America/Chicago:20261117T090000"])))
    instances = run(events.instances(calendarId="primary", eventId=series["id"]))["items"]
    assert [i["id"] for i in instances] == [
        f"{series['id']}_20261020T140000Z", f"{series['id']}_20261027T140000Z",
        f"{series['id']}_20261103T150000Z", f"{series['id']}_20261110T150000Z"]
    assert {i["start"]["dateTime"][11:] for i in instances} == {"09:00:00-05:00", "09:00:00-06:00"}
    moved_id, cancelled_id = instances[1]["id"], instances[2]["id"]
    run(events.patch(calendarId="primary", eventId=moved_id,
                     body=timed("2026-10-28T13:00:00", "2026-10-28T14:00:00")))
    run(events.delete(calendarId="primary", eventId=cancelled_id))

    changed, token = list_all(calendar, syncToken=token)

    by_id = {item["id"]: item for item in changed}
    assert set(by_id) == {series["id"], moved_id, cancelled_id}
    assert by_id[moved_id]["recurringEventId"] == series["id"]
    assert by_id[moved_id]["originalStartTime"]["dateTime"] == "2026-10-27T09:00:00-05:00"
    assert by_id[cancelled_id]["status"] == "cancelled"

    series_view, _ = list_all(calendar)
    assert {(i["id"], i["status"]) for i in series_view} == {
        (single["id"], "confirmed"), (series["id"], "confirmed"), (moved_id, "confirmed"),
        (cancelled_id, "cancelled")}

    expanded, _ = list_all(calendar, singleEvents=True, orderBy="startTime", timeMin="2026-10-01T00:00:00Z",
                           timeMax="2026-12-31T00:00:00Z")
    assert [(i["id"], i["start"]["dateTime"]) for i in expanded] == [
        (single["id"], "2026-10-19T08:00:00-05:00"),
        (f"{series['id']}_20261020T140000Z", "2026-10-20T09:00:00-05:00"),
        (moved_id, "2026-10-28T13:00:00-05:00"),
        (f"{series['id']}_20261110T150000Z", "2026-11-10T09:00:00-06:00"),
    ]

    run(events.delete(calendarId="primary", eventId=single["id"]))
    changed, token = list_all(calendar, syncToken=token, singleEvents=True)
    assert [(i["id"], i["status"]) for i in changed] == [(single["id"], "cancelled")]
    unchanged, _ = list_all(calendar, syncToken=token)
    assert unchanged == []


def test_expired_sync_token_requires_a_full_sync(sandbox: SandboxProcess, calendar: Any) -> None:
    _, token = list_all(calendar)
    sandbox.control("POST", f"/accounts/google/{ALICE}/expire-sync-state")
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token).execute()
    assert raised.value.status_code == 410
    assert raised.value.error_details[0]["reason"] == "fullSyncRequired"
    _, fresh = list_all(calendar)
    assert list_all(calendar, syncToken=fresh)[0] == []


def test_sync_token_cannot_be_combined_with_a_window(calendar: Any) -> None:
    _, token = list_all(calendar)
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token, timeMin="2026-01-01T00:00:00Z").execute()
    assert raised.value.status_code == 400
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", orderBy="startTime").execute()
    assert raised.value.status_code == 400


def test_stale_etag_is_a_precondition_failure(calendar: Any) -> None:
    created = run(calendar.events().insert(calendarId="primary", body=timed(
        "2026-12-02T09:00:00", "2026-12-02T10:00:00", summary="Walkthrough")))
    first = calendar.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "Walk-through"})
    first.headers["If-Match"] = created["etag"]
    updated = run(first)
    assert updated["summary"] == "Walk-through" and updated["etag"] != created["etag"]

    stale = calendar.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "Lost update"})
    stale.headers["If-Match"] = created["etag"]
    with pytest.raises(HttpError) as raised:
        stale.execute()
    assert raised.value.status_code == 412
    assert raised.value.error_details[0]["reason"] == "conditionNotMet"


def test_private_free_all_day_events_with_many_attendees(calendar: Any) -> None:
    attendees = [{"email": f"crew{n}@greenleaf-landscaping.com"} for n in range(1200)]
    created = run(calendar.events().insert(calendarId="primary", body={
        "summary": "Company picnic", "start": {"date": "2026-12-05"}, "end": {"date": "2026-12-06"},
        "visibility": "private", "transparency": "transparent", "attendees": attendees}))
    fetched = run(calendar.events().get(calendarId="primary", eventId=created["id"]))
    assert fetched["visibility"] == "private" and fetched["transparency"] == "transparent"
    assert len(fetched["attendees"]) == 1200 and fetched["start"] == {"date": "2026-12-05"}


def test_control_api_events_show_through_the_api(sandbox: SandboxProcess, calendar: Any) -> None:
    series = sandbox.control("POST", f"/accounts/google/{ALICE}/events", json={
        "subject": "Irrigation check", "start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00",
        "time_zone": CHICAGO, "rrule": "FREQ=DAILY;COUNT=3", "private": True})
    second = f"{series['id']}_20261202T150000Z"
    sandbox.control("PATCH", f"/accounts/google/{ALICE}/events/{second}", json={
        "subject": "Irrigation repair", "start": "2026-12-02T13:00:00", "end": "2026-12-02T14:00:00"})
    sandbox.control("DELETE", f"/accounts/google/{ALICE}/events/{series['id']}_20261203T150000Z")

    items, _ = list_all(calendar, singleEvents=True, orderBy="startTime")

    assert [(i["summary"], i["visibility"], i["start"]["dateTime"]) for i in items] == [
        ("Irrigation check", "private", "2026-12-01T09:00:00-06:00"),
        ("Irrigation repair", "private", "2026-12-02T13:00:00-06:00")]
    assert series["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]
    listed = sandbox.control("GET", f"/accounts/google/{ALICE}/events")["events"]
    assert {e["id"] for e in listed} == {series["id"], second, f"{series['id']}_20261203T150000Z"}


def test_watch_sends_sync_then_exists(sandbox: SandboxProcess, calendar: Any) -> None:
    with push_receiver() as (url, received):
        channel = run(calendar.events().watch(calendarId="primary", body={
            "id": "channel-1", "type": "web_hook", "address": url, "token": "aspire-secret"}))
        sync = received.get(timeout=10)
        assert sync.headers["X-Goog-Resource-State"] == "sync"
        assert sync.headers["X-Goog-Channel-ID"] == "channel-1"
        assert sync.headers["X-Goog-Channel-Token"] == "aspire-secret"
        assert sync.headers["X-Goog-Resource-ID"] == channel["resourceId"]
        assert sync.headers["X-Goog-Message-Number"] == "1"

        run(calendar.events().insert(calendarId="primary", body=timed(
            "2026-12-03T09:00:00", "2026-12-03T10:00:00", summary="Mulch delivery")))
        exists = received.get(timeout=10)
        assert exists.headers["X-Goog-Resource-State"] == "exists"
        assert exists.headers["X-Goog-Message-Number"] == "2"
        assert exists.headers["X-Goog-Resource-URI"].endswith("/calendar/v3/calendars/primary/events?alt=json")

        run(calendar.channels().stop(body={"id": "channel-1", "resourceId": channel["resourceId"]}))
        with pytest.raises(HttpError) as raised:
            calendar.channels().stop(body={"id": "channel-1", "resourceId": channel["resourceId"]}).execute()
        assert raised.value.status_code == 404


def test_batch_of_calendar_inserts(sandbox: SandboxProcess, calendar: Any) -> None:
    results: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = exception or response

    batch = BatchHttpRequest(callback=collect, batch_uri=f"{sandbox.base_url}/batch/calendar/v3")
    for day in (7, 8, 8):
        body = timed(f"2026-12-{day:02d}T09:00:00", f"2026-12-{day:02d}T10:00:00", id=f"aspireappt{day:06d}")
        batch.add(calendar.events().insert(calendarId="primary", body=body))
    batch.execute()

    first, second, retry = (results[key] for key in sorted(results, key=int))
    check_response("calendar.events.insert", first)
    check_response("calendar.events.insert", second)
    assert isinstance(retry, HttpError) and retry.status_code == 409
    assert [item["id"] for item in list_all(calendar)[0]] == ["aspireappt000007", "aspireappt000008"]
