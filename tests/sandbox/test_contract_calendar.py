"""Every calendar call the product makes, against the sandbox, checked against the providers'
documented example responses; and the documented error answers the product handles.

The calls are made as the product makes them (docs/providers-calendar.md lists them): Graph with
the product's Prefer header over requests, Google through google-api-python-client. Each expected
shape is written from the documentation's example response for that call (field names and JSON
types, plus the values the documentation states), in the shape language of test_graph_fidelity;
fields beyond the documented ones are allowed, as the providers return more than their examples
show. Google answers also go through the discovery-schema check of google_support.run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from providers.microsoft.calendar import PREFER
from sandbox.runner import SandboxProcess

from .contract import ARRAY, BOOL, NULL, NUMBER, OBJECT, STRING, Documented, OneOf, Shape, assert_shape, check
from .google_support import connect, create_account, push_receiver, run, service
from .microsoft_client import Graph, graph_for
from .test_graph_fidelity import (
    ATTENDEE,
    DATE_TIME_TIME_ZONE,
    ERROR,
    EVENT_CREATED,
    RECIPIENT,
    REMOVED_EVENT,
    ValidationEndpoint,
)

ANA = "ana@acme.test"
GINA = "gina@greenleaf-landscaping.com"
WINDOW = "startDateTime=2030-11-30T00:00:00Z&endDateTime=2031-01-31T00:00:00Z"
HEADERS = {"Prefer": PREFER}

# -- Graph: documented shapes --------------------------------------------------------------------

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/location
LOCATION: Shape = {"displayName": STRING, "locationType": STRING, "uniqueIdType": STRING}
ADDRESS: Shape = {"street": STRING, "city": STRING, "state": STRING, "countryOrRegion": STRING, "postalCode": STRING}
# Reference: https://learn.microsoft.com/en-us/graph/api/event-delta (the example's events)
# Reference: https://learn.microsoft.com/en-us/graph/api/event-update (isOnlineMeeting, onlineMeetingProvider,
# onlineMeeting, hideAttendees in its example response)
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (occurrenceId: null outside a series)
EVENT: dict[str, Shape] = {
    "@odata.etag": STRING,
    "id": STRING,
    "createdDateTime": STRING,
    "lastModifiedDateTime": STRING,
    "changeKey": STRING,
    "categories": [STRING],
    "originalStartTimeZone": STRING,
    "originalEndTimeZone": STRING,
    "iCalUId": STRING,
    "reminderMinutesBeforeStart": NUMBER,
    "isReminderOn": BOOL,
    "hasAttachments": BOOL,
    "subject": STRING,
    "bodyPreview": STRING,
    "importance": OneOf("low", "normal", "high"),
    "sensitivity": OneOf("normal", "personal", "private", "confidential"),
    "isAllDay": BOOL,
    "isCancelled": BOOL,
    "isOrganizer": BOOL,
    "responseRequested": BOOL,
    "seriesMasterId": (STRING, NULL),
    "showAs": OneOf("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "type": OneOf("singleInstance", "occurrence", "exception", "seriesMaster"),
    "webLink": STRING,
    "onlineMeetingUrl": (STRING, NULL),
    "isOnlineMeeting": BOOL,
    "onlineMeetingProvider": OneOf("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer"),
    "onlineMeeting": (OBJECT, NULL),
    "hideAttendees": BOOL,
    "allowNewTimeProposals": BOOL,
    "occurrenceId": (STRING, NULL),
    "responseStatus": {"response": STRING, "time": STRING},
    "body": {"contentType": OneOf("text", "html"), "content": STRING},
    "start": DATE_TIME_TIME_ZONE,
    "end": DATE_TIME_TIME_ZONE,
    "location": LOCATION,
    "locations": [LOCATION],
    "attendees": [ATTENDEE],
    "organizer": RECIPIENT,
}
DELTA_ITEM: Shape = {"@odata.type": OneOf("#microsoft.graph.event"), **EVENT}
DELTA_FIRST_PAGE = Documented(200, {"@odata.context": STRING, "@odata.nextLink": STRING, "value": [DELTA_ITEM]})
DELTA_LAST_PAGE = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING, "value": [DELTA_ITEM]})
DELTA_REMOVALS = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING, "value": [REMOVED_EVENT]})
# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events (Response 1)
CREATED = Documented(201, {**EVENT_CREATED.body, **EVENT})  # type: ignore[dict-item]
# Reference: https://learn.microsoft.com/en-us/graph/api/event-update ("200 OK and the updated event")
UPDATED = Documented(200, EVENT)
# Reference: https://learn.microsoft.com/en-us/graph/api/event-delete ("204 No Content ... nothing in the body")
DELETED = Documented(204, None)
# Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
SUBSCRIPTION: dict[str, Shape] = {
    "id": STRING, "resource": STRING, "applicationId": STRING, "changeType": STRING, "clientState": STRING,
    "notificationUrl": STRING, "expirationDateTime": STRING, "creatorId": STRING,
}
SUBSCRIBED = Documented(201, {"@odata.context": STRING, **SUBSCRIPTION})
# Reference: https://learn.microsoft.com/en-us/graph/api/subscription-update (its example response)
RENEWED = Documented(200, SUBSCRIPTION)
# Reference: https://learn.microsoft.com/en-us/graph/api/subscription-delete
UNSUBSCRIBED = Documented(204, None)


def graph_error(status: int, code: str) -> Documented:
    # Reference: https://learn.microsoft.com/en-us/graph/errors
    return Documented(status, {"error": {**ERROR, "code": OneOf(code)}})


# -- Google: documented shapes -------------------------------------------------------------------

# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (resource representation)
PERSON: dict[str, Shape] = {"email": STRING}
G_TIME: Shape = {"dateTime": STRING, "timeZone": STRING}
G_EVENT: dict[str, Shape] = {
    "kind": OneOf("calendar#event"),
    "etag": STRING,
    "id": STRING,
    "status": OneOf("confirmed", "tentative", "cancelled"),
    "htmlLink": STRING,
    "created": STRING,
    "updated": STRING,
    "summary": STRING,
    "creator": {**PERSON, "self": BOOL},
    "organizer": {**PERSON, "self": BOOL},
    "start": G_TIME,
    "end": G_TIME,
    "iCalUID": STRING,
    "sequence": NUMBER,
    "reminders": {"useDefault": BOOL},
    "eventType": OneOf("default", "birthday", "focusTime", "fromGmail", "outOfOffice", "workingLocation"),
}
G_INSTANCE: dict[str, Shape] = {**G_EVENT, "recurringEventId": STRING, "originalStartTime": G_TIME}
G_ATTENDEE: Shape = {"email": STRING, "responseStatus": OneOf("needsAction", "declined", "tentative", "accepted")}
G_CANCELLED: dict[str, Shape] = {"kind": OneOf("calendar#event"), "etag": STRING, "id": STRING,
                      "status": OneOf("cancelled")}
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list (response)
G_LIST: dict[str, Shape] = {
    "kind": OneOf("calendar#events"), "etag": STRING, "summary": STRING, "updated": STRING,
    "timeZone": STRING, "accessRole": STRING, "defaultReminders": ARRAY, "items": ARRAY,
}
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/watch (response)
G_CHANNEL: Shape = {"kind": OneOf("api#channel"), "id": STRING, "resourceId": STRING, "resourceUri": STRING,
                    "expiration": STRING}


def google_error(raised: HttpError, status: int, reason: str) -> None:
    """Google's JSON error, with the documented status and reason.
    Reference: https://developers.google.com/workspace/calendar/api/guides/errors"""
    assert raised.status_code == status
    body = json.loads(raised.content)
    assert_shape("error", {"error": {"code": NUMBER, "message": STRING,
                                     "errors": [{"domain": STRING, "reason": STRING, "message": STRING}]}}, body)
    assert body["error"]["code"] == status and body["error"]["errors"][0]["reason"] == reason


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, ANA, display_name="Ana Lopez")


@pytest.fixture
def calendar(sandbox: SandboxProcess) -> Iterator[Any]:
    create_account(sandbox, GINA)
    client = service(sandbox, connect(sandbox, GINA), "calendar")
    yield client
    client.close()


@pytest.fixture
def endpoint() -> Iterator[ValidationEndpoint]:
    listener = ValidationEndpoint()
    yield listener
    listener.server.shutdown()
    listener.server.server_close()


def graph_event(subject: str, day: int, **extra: Any) -> dict[str, Any]:
    zone = "Central Standard Time"
    return {"subject": subject, "start": {"dateTime": f"2030-12-{day:02d}T09:00:00", "timeZone": zone},
            "end": {"dateTime": f"2030-12-{day:02d}T10:00:00", "timeZone": zone}, **extra}


# -- Graph: the calls ------------------------------------------------------------------------------

def test_graph_calendar_view_delta_pages_changes_and_removals(sandbox: SandboxProcess, graph: Graph) -> None:
    """GET /me/calendarView/delta, its nextLink page, and its deltaLink (changes and removals)."""
    sandbox.control("POST", f"/accounts/microsoft/{ANA}/events", json={
        "subject": "Crew standup", "start": "2030-12-02T07:00:00", "end": "2030-12-02T07:30:00",
        "time_zone": "America/Chicago", "rrule": "FREQ=DAILY;COUNT=3"})
    single = graph.ok("POST", "me/events", json=graph_event("Site visit", 4, location={
        "displayName": "Whitfield Residence", "address": {"street": "1402 Cedar Bend Dr", "city": "Austin",
                                                          "state": "TX", "countryOrRegion": "US",
                                                          "postalCode": "78758"}}))
    pages = {"Prefer": PREFER.replace("odata.maxpagesize=100", "odata.maxpagesize=2")}
    first = check(DELTA_FIRST_PAGE, graph.get(f"me/calendarView/delta?{WINDOW}", headers=pages))
    last = check(DELTA_LAST_PAGE, graph.get(first["@odata.nextLink"], headers=pages))
    listed = {item["id"]: item for item in first["value"] + last["value"]}
    occurrences = [item for item in listed.values() if item["type"] == "occurrence"]
    assert len(occurrences) == 3 and all(o["occurrenceId"].startswith(f"OID.{o['seriesMasterId']}.2030-12-0")
                                         for o in occurrences)
    assert listed[single["id"]]["location"]["address"]["city"] == "Austin"
    assert listed[single["id"]]["occurrenceId"] is None and listed[single["id"]]["isOnlineMeeting"] is False
    assert all(item["start"]["timeZone"] == "UTC" for item in listed.values())  # outlook.timezone="UTC"

    graph.ok("DELETE", f"me/events/{single['id']}")
    removals = check(DELTA_REMOVALS, graph.get(last["@odata.deltaLink"], headers=HEADERS))
    assert [item["id"] for item in removals["value"]] == [single["id"]]


def test_graph_create_update_and_delete_an_event(graph: Graph) -> None:
    """POST /me/events (with a transactionId), PATCH and DELETE /me/events/{id} with If-Match."""
    body = graph_event("Estimate walk-through", 5, transactionId="0f8b5a3c9d4e4b7aa1c2d3e4f5a6b7c8",
                       attendees=[{"emailAddress": {"address": "dana@example.com", "name": "Dana"},
                                   "type": "required"}])
    created = check(CREATED, graph.post("me/events", json=body, headers=HEADERS))
    again = check(CREATED, graph.post("me/events", json=body, headers=HEADERS))
    assert again["id"] == created["id"]  # the transactionId made the repeat find the first event
    assert created["attendees"][0]["status"]["response"] == "none"
    updated = check(UPDATED, graph.request("PATCH", f"me/events/{created['id']}", json={"subject": "Walk-through"},
                                           headers={**HEADERS, "If-Match": created["@odata.etag"]}))
    assert updated["subject"] == "Walk-through" and updated["@odata.etag"] != created["@odata.etag"]
    check(DELETED, graph.request("DELETE", f"me/events/{created['id']}", headers={"If-Match": updated["@odata.etag"]}))


def test_graph_subscribe_renew_and_unsubscribe(graph: Graph, endpoint: ValidationEndpoint) -> None:
    """POST /subscriptions on me/events, PATCH and DELETE /subscriptions/{id}."""
    def expires(minutes: int) -> str:
        return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

    created = check(SUBSCRIBED, graph.post("subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": endpoint.url, "resource": "me/events",
        "expirationDateTime": expires(60), "clientState": "aspire-secret"}))
    renewed = check(RENEWED, graph.request("PATCH", f"subscriptions/{created['id']}",
                                           json={"expirationDateTime": expires(4200)}))
    assert renewed["expirationDateTime"] > created["expirationDateTime"]
    check(UNSUBSCRIBED, graph.request("DELETE", f"subscriptions/{created['id']}"))


# -- Graph: the documented errors the product handles ----------------------------------------------

def test_graph_errors_the_product_handles(sandbox: SandboxProcess, graph: Graph) -> None:
    event = graph.ok("POST", "me/events", json=graph_event("Mowing", 7))
    stale = event["@odata.etag"]
    graph.ok("PATCH", f"me/events/{event['id']}", json={"subject": "Mowing (moved)"})
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-update (If-Match; 412 on a changed item)
    check(graph_error(412, "ErrorIrresolvableConflict"),
          graph.request("PATCH", f"me/events/{event['id']}", json={"subject": "x"}, headers={"If-Match": stale}))
    check(graph_error(412, "ErrorIrresolvableConflict"),
          graph.request("DELETE", f"me/events/{event['id']}", headers={"If-Match": stale}))
    graph.ok("DELETE", f"me/events/{event['id']}")
    check(graph_error(404, "ErrorItemNotFound"), graph.request("PATCH", f"me/events/{event['id']}", json={}))
    check(graph_error(404, "ErrorItemNotFound"), graph.request("DELETE", f"me/events/{event['id']}"))
    # Reference: https://learn.microsoft.com/en-us/graph/delta-query-overview (410 when the state is gone)
    _, delta_link = graph.pages(f"me/calendarView/delta?{WINDOW}", headers=HEADERS)
    sandbox.control("POST", f"/accounts/microsoft/{ANA}/expire-sync-state")
    assert delta_link
    check(graph_error(410, "SyncStateNotFound"), graph.get(delta_link, headers=HEADERS))
    # Reference: https://learn.microsoft.com/en-us/graph/throttling (429 with Retry-After)
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 4,
                                             "path": "^/v1.0/me/calendarView"})
    throttled = graph.get(f"me/calendarView/delta?{WINDOW}", headers=HEADERS)
    check(Documented(429, {"error": ERROR}), throttled)
    assert throttled.headers["Retry-After"] == "4"
    expired = requests.get(f"{graph.base}/me/calendarView/delta?{WINDOW}", timeout=10, verify=graph.session.verify,
                           headers={"Authorization": "Bearer not-a-token"})
    check(graph_error(401, "InvalidAuthenticationToken"), expired)


def test_graph_refuses_moving_an_occurrence_past_its_neighbour(sandbox: SandboxProcess, graph: Graph) -> None:
    series = sandbox.control("POST", f"/accounts/microsoft/{ANA}/events", json={
        "subject": "Weekly", "start": "2030-12-02T09:00:00", "end": "2030-12-02T10:00:00",
        "rrule": "FREQ=WEEKLY;COUNT=3"})
    second = graph.ok("GET", f"me/events/{series['id']}/instances?{WINDOW}")["value"][1]
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-update (ErrorOccurrenceCrossingBoundary)
    past_the_third = graph.request("PATCH", f"me/events/{second['id']}", json={
        "start": {"dateTime": "2030-12-16T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-12-16T10:00:00", "timeZone": "UTC"}})
    check(graph_error(400, "ErrorOccurrenceCrossingBoundary"), past_the_third)
    moved = graph.ok("PATCH", f"me/events/{second['id']}", json={
        "start": {"dateTime": "2030-12-10T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-12-10T10:00:00", "timeZone": "UTC"}})
    assert moved["type"] == "exception"


def test_graph_event_limits(graph: Graph) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (at most 500 attendees)
    crowd = [{"emailAddress": {"address": f"n{n}@hoa.example"}, "type": "optional"} for n in range(501)]
    check(graph_error(400, "ErrorInvalidRecipients"), graph.post("me/events", json=graph_event("HOA", 8,
                                                                                               attendees=crowd)))
    assert graph.post("me/events", json=graph_event("HOA", 8, attendees=crowd[:500])).status_code == 201
    # Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
    # (ErrorCalendarDurationIsTooLong: "longer than the maximum allowed, which is currently 5 years")
    check(graph_error(400, "ErrorCalendarDurationIsTooLong"), graph.post("me/events", json={
        "subject": "Forever", "start": {"dateTime": "2030-12-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2036-12-01T09:00:00", "timeZone": "UTC"}}))


# -- Google: the calls -----------------------------------------------------------------------------

def timed(start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start, "timeZone": "America/Chicago"},
            "end": {"dateTime": end, "timeZone": "America/Chicago"}, **fields}


def test_google_list_full_then_pages_then_incremental(calendar: Any) -> None:
    """events.list with timeMin/timeMax and singleEvents (as the product's full listing), its next
    page, and events.list with the syncToken (the product's incremental listing)."""
    events = calendar.events()
    series = run(events.insert(calendarId="primary", body=timed(
        "2030-12-02T07:00:00", "2030-12-02T07:30:00", summary="Crew standup",
        recurrence=["RRULE:FREQ=DAILY;COUNT=4"], attendees=[{"email": "dana@example.com"}])))
    first = run(events.list(calendarId="primary", singleEvents=True, maxResults=3,
                            timeMin="2030-11-30T00:00:00Z", timeMax="2031-01-31T00:00:00Z"))
    assert_shape("events.list", {**G_LIST, "nextPageToken": STRING, "items": [G_INSTANCE]}, first)
    last = run(events.list(calendarId="primary", singleEvents=True, maxResults=3, pageToken=first["nextPageToken"],
                           timeMin="2030-11-30T00:00:00Z", timeMax="2031-01-31T00:00:00Z"))
    assert_shape("events.list, last page", {**G_LIST, "nextSyncToken": STRING, "items": [G_INSTANCE]}, last)
    instance = first["items"][0]
    assert_shape("attendee", G_ATTENDEE, instance["attendees"][0])
    assert instance["organizer"]["email"] == GINA and instance["creator"]["email"] == GINA
    assert instance["htmlLink"] and instance["recurringEventId"] == series["id"]

    # Shortened from four to two: the incremental listing reports the two dropped instances cancelled.
    run(events.patch(calendarId="primary", eventId=series["id"], body={"recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]}))
    changed = run(events.list(calendarId="primary", singleEvents=True, syncToken=last["nextSyncToken"]))
    assert_shape("events.list, incremental", {**G_LIST, "nextSyncToken": STRING}, changed)
    cancelled = [i for i in changed["items"] if i["status"] == "cancelled"]
    for item in cancelled:
        assert_shape("a dropped instance", {**G_CANCELLED, "recurringEventId": STRING,
                                            "originalStartTime": G_TIME}, item)
    assert sorted(i["originalStartTime"]["dateTime"][:10] for i in cancelled) == ["2030-12-04", "2030-12-05"]
    assert sorted(i["start"]["dateTime"][:10] for i in changed["items"] if i["status"] != "cancelled") == [
        "2030-12-02", "2030-12-03"]


def test_google_insert_get_patch_delete(calendar: Any) -> None:
    """events.insert with the product's own id, events.get (after a 409), events.patch and
    events.delete with If-Match."""
    events = calendar.events()
    body = timed("2030-12-05T10:00:00", "2030-12-05T11:00:00", id="0f8b5a3c9d4e4b7aa1c2d3e4f5a6b7c8",
                 summary="Estimate walk-through", visibility="private", transparency="opaque")
    created = run(events.insert(calendarId="primary", body=body))
    assert_shape("events.insert", G_EVENT, created)
    with pytest.raises(HttpError) as raised:
        events.insert(calendarId="primary", body=body).execute()
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert (409 on a taken id)
    google_error(raised.value, 409, "duplicate")
    fetched = run(events.get(calendarId="primary", eventId=created["id"]))
    assert_shape("events.get", G_EVENT, fetched)
    patch = events.patch(calendarId="primary", eventId=created["id"], body={"summary": "Walk-through"})
    patch.headers["If-Match"] = created["etag"]
    patched = run(patch)
    assert_shape("events.patch", G_EVENT, patched)
    assert patched["summary"] == "Walk-through" and patched["sequence"] == created["sequence"] + 1
    delete = events.delete(calendarId="primary", eventId=created["id"])
    delete.headers["If-Match"] = patched["etag"]
    assert run(delete) == ""


def test_google_watch_and_stop(calendar: Any) -> None:
    """events.watch (a web_hook channel) and channels.stop."""
    with push_receiver() as (url, _):
        channel = run(calendar.events().watch(calendarId="primary", body={
            "id": "aspire-channel-1", "type": "web_hook", "address": url, "token": "aspire-secret",
            "expiration": str(int((dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).timestamp() * 1000))}))
        assert_shape("events.watch", G_CHANNEL, channel)
        assert run(calendar.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]})) == ""


# -- Google: the documented errors the product handles ---------------------------------------------

def test_google_errors_the_product_handles(sandbox: SandboxProcess, calendar: Any) -> None:
    events = calendar.events()
    created = run(events.insert(calendarId="primary", body=timed("2030-12-06T10:00:00", "2030-12-06T11:00:00",
                                                                   summary="Fence quote")))
    run(events.patch(calendarId="primary", eventId=created["id"], body={"summary": "Fence quote (moved)"}))
    # Reference: https://developers.google.com/workspace/calendar/api/guides/version-resources (412 on a stale etag)
    stale = events.patch(calendarId="primary", eventId=created["id"], body={"summary": "x"})
    stale.headers["If-Match"] = created["etag"]
    with pytest.raises(HttpError) as raised:
        stale.execute()
    google_error(raised.value, 412, "conditionNotMet")
    run(events.delete(calendarId="primary", eventId=created["id"]))
    # Reference: https://developers.google.com/workspace/calendar/api/guides/errors (410 deleted)
    for request in (events.patch(calendarId="primary", eventId=created["id"], body={"summary": "x"}),
                    events.delete(calendarId="primary", eventId=created["id"])):
        with pytest.raises(HttpError) as raised:
            request.execute()
        google_error(raised.value, 410, "deleted")
    with pytest.raises(HttpError) as raised:
        events.delete(calendarId="primary", eventId="neverexisted0").execute()
    google_error(raised.value, 404, "notFound")
    # Reference: https://developers.google.com/workspace/calendar/api/guides/sync (410 fullSyncRequired)
    token = run(events.list(calendarId="primary", singleEvents=True))["nextSyncToken"]
    sandbox.control("POST", f"/accounts/google/{GINA}/expire-sync-state")
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary", singleEvents=True, syncToken=token).execute()
    google_error(raised.value, 410, "fullSyncRequired")
    with pytest.raises(HttpError) as raised:
        calendar.channels().stop(body={"id": "no-such-channel", "resourceId": "none"}).execute()
    google_error(raised.value, 404, "notFound")
    # Reference: https://developers.google.com/workspace/calendar/api/guides/errors (rate limits: 429)
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 2,
                                             "path": "^/calendar/v3/calendars/primary/events$"})
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary", singleEvents=True).execute()
    google_error(raised.value, 429, "rateLimitExceeded")


def test_google_event_limits(calendar: Any) -> None:
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (reminders.overrides:
    # "The maximum number of override reminders is 5"; minutes "between 0 and 40320")
    six = [{"method": "popup", "minutes": 10 * n} for n in range(6)]
    for reminders in ({"useDefault": False, "overrides": six},
                      {"useDefault": False, "overrides": [{"method": "popup", "minutes": 40321}]}):
        with pytest.raises(HttpError) as raised:
            calendar.events().insert(calendarId="primary", body=timed(
                "2030-12-07T10:00:00", "2030-12-07T11:00:00", reminders=reminders)).execute()
        google_error(raised.value, 400, "invalid")
    kept = run(calendar.events().insert(calendarId="primary", body=timed(
        "2030-12-07T10:00:00", "2030-12-07T11:00:00", reminders={"useDefault": False, "overrides": six[:5]})))
    assert len(kept["reminders"]["overrides"]) == 5


# -- mail to attendees: what each provider sends, counted by the sandbox ---------------------------

def mail_to_attendees(sandbox: SandboxProcess, email: str) -> dict[str, int]:
    counters = sandbox.control("GET", "/counters")["counters"].get(email, {})
    return {key: value for key, value in counters.items() if key.startswith("invitations")}


def test_graph_mails_attendees_on_every_organiser_write(sandbox: SandboxProcess, graph: Graph) -> None:
    """Graph invites on create, updates on a change (only the added attendees when only attendees
    change), cancels on delete; an event without attendees mails nobody."""
    people = [{"emailAddress": {"address": a}, "type": "required"} for a in ("dana@example.com", "sam@example.com")]
    lone = check(CREATED, graph.post("me/events", json=graph_event("Paperwork", 4), headers=HEADERS))
    graph.request("PATCH", f"me/events/{lone['id']}", json={"subject": "Paperwork, again"}, headers=HEADERS)
    assert mail_to_attendees(sandbox, ANA) == {}
    created = check(CREATED, graph.post("me/events", json=graph_event("Walk-through", 5, attendees=people),
                                        headers=HEADERS))
    assert mail_to_attendees(sandbox, ANA) == {"invitations": 2, "invitations.invitation": 2}
    graph.request("PATCH", f"me/events/{created['id']}", json={"subject": "Walk-through, back yard"}, headers=HEADERS)
    assert mail_to_attendees(sandbox, ANA)["invitations.update"] == 2
    more = [*people, {"emailAddress": {"address": "lee@example.com"}, "type": "required"}]
    graph.request("PATCH", f"me/events/{created['id']}", json={"attendees": more}, headers=HEADERS)
    assert mail_to_attendees(sandbox, ANA)["invitations.update"] == 3  # only Lee, who was added
    graph.request("DELETE", f"me/events/{created['id']}")
    assert mail_to_attendees(sandbox, ANA)["invitations.cancellation"] == 3


def test_google_mails_guests_only_with_send_updates(sandbox: SandboxProcess, calendar: Any) -> None:
    """sendUpdates none (or absent) mails nobody, all mails every guest, externalOnly the guests
    without a Google account (the client library itself refuses any other value)."""
    events = calendar.events()
    guests = [{"email": "dana@example.com"}, {"email": "gina2@greenleaf-landscaping.com"}]
    create_account(sandbox, "gina2@greenleaf-landscaping.com")
    quiet = run(events.insert(calendarId="primary", body=timed("2030-12-05T10:00:00", "2030-12-05T11:00:00",
                                                                summary="Quiet", attendees=guests)))
    run(events.patch(calendarId="primary", eventId=quiet["id"], body={"summary": "Quieter"}, sendUpdates="none"))
    assert mail_to_attendees(sandbox, GINA) == {}
    loud = run(events.insert(calendarId="primary", sendUpdates="all", body=timed(
        "2030-12-06T10:00:00", "2030-12-06T11:00:00", summary="Walk-through", attendees=guests)))
    assert mail_to_attendees(sandbox, GINA) == {"invitations": 2, "invitations.invitation": 2}
    run(events.patch(calendarId="primary", eventId=loud["id"], body={"summary": "Moved"}, sendUpdates="externalOnly"))
    assert mail_to_attendees(sandbox, GINA)["invitations.update"] == 1  # dana only: gina2 has Google Calendar
    run(events.delete(calendarId="primary", eventId=loud["id"], sendUpdates="all"))
    assert mail_to_attendees(sandbox, GINA)["invitations.cancellation"] == 2
