"""The sandbox's Graph responses checked against the response examples in Microsoft's Graph v1.0
documentation.

Each expected shape below is written from the documented example (field names and JSON types only,
plus the values and status codes the documentation states); the sandbox is then driven to give the
same kind of response over HTTPS with a real msal-obtained token. Fields the sandbox returns beyond
the documented ones are allowed, as Graph itself returns more than its examples show; they are
listed in the failure message when a check fails.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.runner import SandboxProcess

from .contract import (
    BOOL,
    NULL,
    NUMBER,
    OBJECT,
    STRING,
    Documented,
    OneOf,
    Shape,
    assert_shape,
    check,
    page_links,
)
from .microsoft_client import Graph, graph_for

EMAIL = "ana@acme.test"


# -- documented shapes ---------------------------------------------------------------------------

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/recipient?view=graph-rest-1.0
RECIPIENT: dict[str, Shape] = {"emailAddress": {"name": STRING, "address": STRING}}
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone?view=graph-rest-1.0
DATE_TIME_TIME_ZONE: Shape = {"dateTime": STRING, "timeZone": STRING}

# Reference: https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0
# The default property set of Example 2 (GET /me); "@odata.context" as in Example 3. The list-users
# example of the same resource shows unset jobTitle, mobilePhone and officeLocation as null.
# Reference: https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0
ME = Documented(200, {
    "@odata.context": STRING,
    "businessPhones": [STRING],
    "displayName": STRING,
    "givenName": STRING,
    "jobTitle": (STRING, NULL),
    "mail": STRING,
    "mobilePhone": (STRING, NULL),
    "officeLocation": (STRING, NULL),
    "preferredLanguage": STRING,
    "surname": STRING,
    "userPrincipalName": STRING,
    "id": STRING,
})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings?view=graph-rest-1.0
# Example 1. Its userPurpose is drawn as an object, but Example 4 (GET .../mailboxSettings/userPurpose
# answering {"value": "user"}) and the resource's JSON representation make it a string enum.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailboxsettings?view=graph-rest-1.0
MAILBOX_SETTINGS = Documented(200, {
    "@odata.context": STRING,
    "automaticRepliesSetting": {
        "status": STRING,
        "externalAudience": STRING,
        "scheduledStartDateTime": DATE_TIME_TIME_ZONE,
        "scheduledEndDateTime": DATE_TIME_TIME_ZONE,
        "internalReplyMessage": STRING,
        "externalReplyMessage": STRING,
    },
    "timeZone": STRING,
    "language": {"locale": STRING, "displayName": STRING},
    "workingHours": {
        "daysOfWeek": [STRING],
        "startTime": STRING,
        "endTime": STRING,
        "timeZone": {"name": STRING},
    },
    "userPurpose": OneOf("user", "linked", "shared", "room", "equipment", "others", "unknownFutureValue"),
    "dateFormat": STRING,
    "timeFormat": STRING,
    "delegateMeetingMessageDeliveryOptions": STRING,
})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders?view=graph-rest-1.0
MAIL_FOLDER: Shape = {
    "id": STRING,
    "displayName": STRING,
    "parentFolderId": STRING,
    "childFolderCount": NUMBER,
    "unreadItemCount": NUMBER,
    "totalItemCount": NUMBER,
    "isHidden": BOOL,
}
MAIL_FOLDERS = Documented(200, {"@odata.context": STRING, "value": [MAIL_FOLDER]})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-mailfolders?view=graph-rest-1.0
MAIL_FOLDER_CREATED = Documented(201, MAIL_FOLDER)

# Reference: https://learn.microsoft.com/en-us/graph/errors
# The error body: code and message strings and an innerError object; the JSON batching example
# shows innerError's date, request-id and client-request-id.
# Reference: https://learn.microsoft.com/en-us/graph/json-batching
ERROR: dict[str, Shape] = {
    "code": STRING,
    "message": STRING,
    "innerError": {"date": STRING, "request-id": STRING, "client-request-id": STRING},
}
ERROR_BODY: Shape = {"error": ERROR}
NOT_FOUND = Documented(404, ERROR_BODY)

# Graph's pages do not name a status for a sibling folder's name taken again; the errors page gives
# 409 Conflict for a request that conflicts with the current state, and Exchange's response codes
# name the case ErrorFolderExists ("a folder with the same name as another folder in the same parent").
# Reference: https://learn.microsoft.com/en-us/graph/errors#http-status-codes
# Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
FOLDER_EXISTS = Documented(409, {"error": {**ERROR, "code": OneOf("ErrorFolderExists")}})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-list-messages?view=graph-rest-1.0
# Example 1 ($select=sender,subject): each message has its etag and id besides what was selected.
# Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages?view=graph-rest-1.0
SELECTED_MESSAGE: Shape = {"@odata.etag": STRING, "id": STRING, "subject": STRING, "sender": RECIPIENT}
SELECTED_MESSAGES = Documented(200, {"@odata.context": STRING, "@odata.nextLink": STRING,
                                     "value": [SELECTED_MESSAGE]})

# Reference: https://learn.microsoft.com/en-us/graph/delta-query-messages
# Example 1 with $select=subject,sender,isRead. (Its second round shows isRead as "true", a string;
# the first round and the message resource have a Boolean.)
DELTA_MESSAGE: Shape = {
    "@odata.type": OneOf("#microsoft.graph.message"),
    "@odata.etag": STRING,
    "subject": STRING,
    "isRead": BOOL,
    "sender": RECIPIENT,
    "id": STRING,
}
REMOVED_MESSAGE: Shape = {
    "@odata.type": OneOf("#microsoft.graph.message"),
    "id": STRING,
    "@removed": {"reason": OneOf("deleted")},
}
MESSAGE_DELTA_PAGE = Documented(200, {"@odata.context": STRING, "@odata.nextLink": STRING, "value": [DELTA_MESSAGE]})
MESSAGE_DELTA_LAST = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING, "value": [DELTA_MESSAGE]})
MESSAGE_DELTA_REMOVED = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING,
                                         "value": [REMOVED_MESSAGE]})

# Reference: https://learn.microsoft.com/en-us/graph/api/message-move?view=graph-rest-1.0
MOVED_MESSAGE = Documented(201, {
    "@odata.context": STRING,
    "@odata.type": OneOf("#microsoft.graph.message"),
    "@odata.etag": STRING,
    "id": STRING,
    "createdDateTime": STRING,
    "lastModifiedDateTime": STRING,
    "changeKey": STRING,
    "categories": [STRING],
    "receivedDateTime": STRING,
    "sentDateTime": STRING,
    "hasAttachments": BOOL,
    "internetMessageId": STRING,
    "subject": STRING,
    "bodyPreview": STRING,
    "importance": OneOf("low", "normal", "high"),
    "parentFolderId": STRING,
    "conversationId": STRING,
    "isDeliveryReceiptRequested": (BOOL, NULL),
    "isReadReceiptRequested": BOOL,
    "isRead": BOOL,
    "isDraft": BOOL,
    "webLink": STRING,
    "inferenceClassification": OneOf("focused", "other"),
    "body": {"contentType": OneOf("text", "html"), "content": STRING},
    "sender": RECIPIENT,
    "from": RECIPIENT,
    "toRecipients": [RECIPIENT],
    "ccRecipients": [RECIPIENT],
    "bccRecipients": [RECIPIENT],
    "replyTo": [RECIPIENT],
    "flag": {"flagStatus": STRING},
})

# Reference: https://learn.microsoft.com/en-us/graph/json-batching
# "responses", each with its request's id, the HTTP status as a number, the headers and the body.
BATCH_STEP: Shape = {"id": STRING, "status": NUMBER, "headers": OBJECT, "body": OBJECT}
BATCH = Documented(200, {"responses": [BATCH_STEP]})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-sendmail?view=graph-rest-1.0
# "202 Accepted ... It doesn't return anything in the response body."
SEND_MAIL = Documented(202, None)

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/attendee?view=graph-rest-1.0
ATTENDEE: Shape = {"type": STRING, "status": {"response": STRING, "time": STRING}, **RECIPIENT}

# Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
# The events of its pages, with the fields the event-delta example adds, and the event resource's
# types for type, seriesMasterId, sensitivity and showAs (seriesMasterId is null outside a series,
# as the create-event example shows).
# Reference: https://learn.microsoft.com/en-us/graph/api/event-delta?view=graph-rest-1.0
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0
DELTA_EVENT: Shape = {
    "@odata.type": OneOf("#microsoft.graph.event"),
    "@odata.etag": STRING,
    "id": STRING,
    "subject": STRING,
    "body": {"contentType": STRING, "content": STRING},
    "start": DATE_TIME_TIME_ZONE,
    "end": DATE_TIME_TIME_ZONE,
    "attendees": [ATTENDEE],
    "organizer": RECIPIENT,
    "type": OneOf("singleInstance", "occurrence", "exception", "seriesMaster"),
    "seriesMasterId": (STRING, NULL),
    "sensitivity": OneOf("normal", "personal", "private", "confidential"),
    "showAs": OneOf("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "iCalUId": STRING,
    "changeKey": STRING,
    "originalStartTimeZone": STRING,
    "originalEndTimeZone": STRING,
    "responseStatus": {"response": STRING, "time": STRING},
    "transactionId": (STRING, NULL),
    "reminderMinutesBeforeStart": NUMBER,
    "isDraft": BOOL,
    "isReminderOn": BOOL,
}
REMOVED_EVENT: Shape = {
    "@odata.type": OneOf("#microsoft.graph.event"),
    "id": STRING,
    "@removed": {"reason": OneOf("deleted")},
}
EVENT_DELTA_PAGE = Documented(200, {"@odata.context": STRING, "@odata.nextLink": STRING, "value": [DELTA_EVENT]})
EVENT_DELTA_LAST = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING, "value": [DELTA_EVENT]})
EVENT_DELTA_REMOVED = Documented(200, {"@odata.context": STRING, "@odata.deltaLink": STRING,
                                       "value": [REMOVED_EVENT]})

# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events?view=graph-rest-1.0
# Response 1: a single event, its start and end in the zone the Prefer: outlook.timezone header named.
EVENT_CREATED = Documented(201, {
    "@odata.context": STRING,
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
    "seriesMasterId": NULL,
    "showAs": OneOf("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "type": OneOf("singleInstance"),
    "webLink": STRING,
    "onlineMeetingUrl": (STRING, NULL),
    "responseStatus": {"response": STRING, "time": STRING},
    "body": {"contentType": STRING, "content": STRING},
    "start": {"dateTime": STRING, "timeZone": OneOf("Pacific Standard Time")},
    "end": {"dateTime": STRING, "timeZone": OneOf("Pacific Standard Time")},
    "location": {"displayName": STRING, "locationType": STRING, "uniqueId": STRING, "uniqueIdType": STRING},
    "locations": [{"displayName": STRING, "locationType": STRING, "uniqueIdType": STRING}],
    "recurrence": NULL,
    "attendees": [ATTENDEE],
    "organizer": RECIPIENT,
})

# Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions?view=graph-rest-1.0
SUBSCRIPTION_CREATED = Documented(201, {
    "@odata.context": STRING,
    "id": STRING,
    "resource": STRING,
    "applicationId": STRING,
    "changeType": STRING,
    "clientState": STRING,
    "notificationUrl": STRING,
    "expirationDateTime": STRING,
    "creatorId": STRING,
    "latestSupportedTlsVersion": STRING,
    "notificationContentType": STRING,
})


# -- driving the sandbox -------------------------------------------------------------------------

@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, EMAIL, display_name="Ana Lopez")


def put_mail(sandbox: SandboxProcess, folder: str, subject: str) -> dict[str, Any]:
    raw = (f"From: Client <client@example.com>\r\nTo: {EMAIL}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
           f"\r\nBody of {subject}\r\n")
    result: dict[str, Any] = sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/messages",
                                             json={"folder": folder, "raw": raw})
    return result


def new_folder(graph: Graph, name: str) -> str:
    folder_id: str = graph.ok("POST", "me/mailFolders", json={"displayName": name})["id"]
    return folder_id


def test_me(graph: Graph) -> None:
    check(ME, graph.get("me"))


def test_mailbox_settings(graph: Graph) -> None:
    settings = check(MAILBOX_SETTINGS, graph.get("me/mailboxSettings"))
    assert settings["userPurpose"] == "user"


def test_mail_folders_list_create_and_duplicate(graph: Graph) -> None:
    folders = check(MAIL_FOLDERS, graph.get("me/mailFolders"))
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items"} <= {f["displayName"] for f in folders["value"]}

    created = check(MAIL_FOLDER_CREATED, graph.post("me/mailFolders", json={"displayName": "Clutter",
                                                                            "isHidden": True}))
    assert created["displayName"] == "Clutter" and created["isHidden"] is True
    check(FOLDER_EXISTS, graph.post("me/mailFolders", json={"displayName": "Clutter"}))


def test_error_envelope(graph: Graph) -> None:
    check(NOT_FOUND, graph.get("me/messages/AAMkADnot-a-message"))


def test_folder_messages_with_select(sandbox: SandboxProcess, graph: Graph) -> None:
    new_folder(graph, "Aspire")
    for n in range(3):
        put_mail(sandbox, "Aspire", f"Quote {n}")
    folder_id = next(f["id"] for f in graph.ok("GET", "me/mailFolders")["value"] if f["displayName"] == "Aspire")
    page = check(SELECTED_MESSAGES, graph.get(f"me/mailFolders/{folder_id}/messages?$select=sender,subject&$top=2"))
    assert len(page["value"]) == 2


def test_message_delta_pages_and_a_removal(sandbox: SandboxProcess, graph: Graph) -> None:
    folder_id = new_folder(graph, "Aspire")
    for n in range(3):
        put_mail(sandbox, "Aspire", f"Mail {n}")
    small_pages = {"Prefer": "odata.maxpagesize=2"}

    first = check(MESSAGE_DELTA_PAGE, graph.get(
        f"me/mailFolders/{folder_id}/messages/delta?$select=subject,sender,isRead", headers=small_pages))
    assert page_links(first) == {"@odata.nextLink"} and len(first["value"]) == 2
    last = check(MESSAGE_DELTA_LAST, graph.get(first["@odata.nextLink"], headers=small_pages))
    assert page_links(last) == {"@odata.deltaLink"} and len(last["value"]) == 1

    gone = first["value"][0]["id"]
    graph.ok("POST", f"me/messages/{gone}/move", json={"destinationId": "deleteditems"})
    changes = check(MESSAGE_DELTA_REMOVED, graph.get(last["@odata.deltaLink"], headers=small_pages))
    assert [item["id"] for item in changes["value"]] == [gone]


def test_move(sandbox: SandboxProcess, graph: Graph) -> None:
    message = put_mail(sandbox, "Inbox", "Meet for lunch")
    moved = check(MOVED_MESSAGE, graph.post(f"me/messages/{message['id']}/move",
                                            json={"destinationId": "deleteditems"}))
    assert moved["parentFolderId"] == graph.ok("GET", "me/mailFolders/deleteditems")["id"]


def test_batch_envelope(graph: Graph) -> None:
    batch = check(BATCH, graph.post("$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": "/me"},
        {"id": "2", "method": "GET", "url": "/me/messages/AAMkADnot-a-message"},
    ]}))
    steps = {step["id"]: step for step in batch["responses"]}
    assert steps["1"]["status"] == ME.status and steps["2"]["status"] == NOT_FOUND.status
    assert ME.body is not None
    assert_shape("batch step 1 (GET /me)", ME.body, steps["1"]["body"])
    assert_shape("batch step 2 (an error)", ERROR_BODY, steps["2"]["body"])


def test_send_mail(graph: Graph) -> None:
    check(SEND_MAIL, graph.post("me/sendMail", json={
        "message": {"subject": "Meet for lunch?", "body": {"contentType": "Text", "content": "The cafe is open."},
                    "toRecipients": [{"emailAddress": {"address": "frannis@contoso.test"}}]},
        "saveToSentItems": "false",
    }))


def test_calendar_view_delta(sandbox: SandboxProcess, graph: Graph) -> None:
    def put_event(**spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/events", json=spec)
        return result

    series = put_event(subject="Crew standup", start="2026-12-01T09:00:00", end="2026-12-01T09:30:00",
                       time_zone="America/Chicago", rrule="FREQ=DAILY;COUNT=2", attendees=["dana@example.com"])
    single = put_event(subject="Site visit", start="2026-12-03T14:00:00", end="2026-12-03T15:00:00",
                       time_zone="America/Chicago", private=True, show_as="free")
    window = "startDateTime=2026-11-30T00:00:00Z&endDateTime=2026-12-31T00:00:00Z"
    small_pages = {"Prefer": "odata.maxpagesize=2"}

    first = check(EVENT_DELTA_PAGE, graph.get(f"me/calendarView/delta?{window}", headers=small_pages))
    assert page_links(first) == {"@odata.nextLink"}
    last = check(EVENT_DELTA_LAST, graph.get(first["@odata.nextLink"], headers=small_pages))
    assert page_links(last) == {"@odata.deltaLink"}
    events = {event["id"]: event for event in first["value"] + last["value"]}
    occurrences = [e for e in events.values() if e["type"] == "occurrence"]
    assert len(occurrences) == 2 and {e["seriesMasterId"] for e in occurrences} == {series["id"]}
    assert events[single["id"]]["type"] == "singleInstance" and events[single["id"]]["seriesMasterId"] is None
    assert events[single["id"]]["sensitivity"] == "private" and events[single["id"]]["showAs"] == "free"

    sandbox.control("DELETE", f"/accounts/microsoft/{EMAIL}/events/{single['id']}")
    changes = check(EVENT_DELTA_REMOVED, graph.get(last["@odata.deltaLink"], headers=small_pages))
    assert [item["id"] for item in changes["value"]] == [single["id"]]


def test_create_event(graph: Graph) -> None:
    pacific = {"Prefer": 'outlook.timezone="Pacific Standard Time"'}
    created = check(EVENT_CREATED, graph.post("me/events", headers=pacific, json={
        "subject": "Let's go for lunch",
        "body": {"contentType": "HTML", "content": "Does late morning work for you?"},
        "start": {"dateTime": "2026-12-15T12:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-12-15T14:00:00", "timeZone": "Pacific Standard Time"},
        "location": {"displayName": "Harry's Bar"},
        "attendees": [{"emailAddress": {"address": "samanthab@contoso.test", "name": "Samantha Booth"},
                       "type": "required"}],
    }))
    assert created["start"]["dateTime"].startswith("2026-12-15T12:00:00")


def test_an_event_body_comes_as_html_unless_text_is_preferred(graph: Graph) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-get (Prefer: outlook.body-content-type)
    times = {"start": {"dateTime": "2026-12-16T09:00:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-12-16T10:00:00", "timeZone": "UTC"}}
    notes = {"contentType": "text", "content": "Back gate\nCode 4 < 5"}
    written_as_text = graph.post("me/events", json={"subject": "Mulch delivery", "body": notes, **times}).json()
    assert written_as_text["body"]["contentType"] == "html"
    assert "<div>Back gate</div><div>Code 4 &lt; 5</div>" in written_as_text["body"]["content"]
    as_text = {"Prefer": 'outlook.body-content-type="text"'}
    assert graph.get(f"me/events/{written_as_text['id']}", headers=as_text).json()["body"] == {
        "contentType": "text", "content": "Back gate\nCode 4 < 5"}

    notes = {"contentType": "HTML", "content": "<p>Park on the street</p><p>Ring twice</p>"}
    written_as_html = graph.post("me/events", json={"subject": "Walkthrough", "body": notes, **times}).json()
    assert written_as_html["body"]["contentType"] == "html"
    listed = graph.get("me/calendarView?startDateTime=2026-12-16T00:00:00Z&endDateTime=2026-12-17T00:00:00Z",
                       headers=as_text).json()["value"]
    bodies = {event["subject"]: event["body"] for event in listed}
    assert bodies["Walkthrough"]["contentType"] == "text"
    assert bodies["Walkthrough"]["content"].split() == ["Park", "on", "the", "street", "Ring", "twice"]
    assert "\r\n" in bodies["Walkthrough"]["content"], "each paragraph on a line of its own, as Windows ends lines"


class ValidationEndpoint:
    """A plain-HTTP notification URL on loopback that echoes Graph's validation token."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                token = parse_qs(urlsplit(self.path).query).get("validationToken", [""])[0].encode()
                self.send_response(200 if token else 202)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(token)))
                self.end_headers()
                self.wfile.write(token)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[ValidationEndpoint]:
    listener = ValidationEndpoint()
    yield listener
    listener.server.shutdown()
    listener.server.server_close()


def test_create_subscription(graph: Graph, endpoint: ValidationEndpoint) -> None:
    expiration = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    created = check(SUBSCRIPTION_CREATED, graph.post("subscriptions", json={
        "changeType": "created",
        "notificationUrl": endpoint.url,
        "resource": "me/mailFolders('Inbox')/messages",
        "expirationDateTime": expiration,
        "clientState": "secretClientValue",
        "latestSupportedTlsVersion": "v1_2",
    }))
    assert created["clientState"] == "secretClientValue" and created["changeType"] == "created"
