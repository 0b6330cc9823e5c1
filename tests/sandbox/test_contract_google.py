"""Contract: each Google OAuth and Gmail call the product makes for sign-in, mail, sending and push,
and each documented error answer it handles, against the sandbox through google-auth-oauthlib and
google-api-python-client. Every Gmail answer is checked against the discovery document's schema
(google_support.run) and against a shape written from the method's documented response (see
contract.py). docs/providers.md lists the calls with their documentation and names these tests."""

from __future__ import annotations

import base64
import email
import json
import os
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload

from sandbox.runner import SandboxProcess

from .contract import NUMBER, STRING, Documented, OneOf, Shape, assert_shape, check
from .google_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Redirect,
    browser,
    connect,
    create_account,
    new_flow,
    push_receiver,
    run,
    service,
    sign_in,
)

ALICE = "alice@greenleaf-landscaping.com"
CUSTOMER = "pat.customer@example.org"
MB = 1024 * 1024

# -- documented shapes: OAuth 2.0 ------------------------------------------------------------------

# Reference: https://developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code
CODE_EXCHANGED = Documented(200, {"access_token": STRING, "expires_in": NUMBER, "refresh_token": STRING,
                                  "scope": STRING, "token_type": OneOf("Bearer"), "id_token": STRING})
# Reference: https://developers.google.com/identity/protocols/oauth2/web-server#offline
REFRESHED = Documented(200, {"access_token": STRING, "expires_in": NUMBER, "scope": STRING,
                             "token_type": OneOf("Bearer")})
# Reference: https://datatracker.ietf.org/doc/html/rfc6749#section-5.2 (Google's token endpoint errors)
TOKEN_ERROR: dict[str, Shape] = {"error": STRING, "error_description": STRING}
# Reference: https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
REVOKED = Documented(200, {})

# -- documented shapes: Gmail -------------------------------------------------------------------

# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/getProfile
PROFILE: Shape = {"emailAddress": STRING, "messagesTotal": NUMBER, "threadsTotal": NUMBER, "historyId": STRING}
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.settings.sendAs
# (Booleans that are false may be left out, as in every Google JSON answer.)
SEND_AS: Shape = {"sendAs": [{"sendAsEmail": STRING, "displayName": STRING}]}
PRIMARY_SEND_AS: Shape = {"sendAsEmail": STRING, "displayName": STRING, "replyToAddress": STRING, "signature": STRING,
                          "isPrimary": "bool", "isDefault": "bool"}
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels
LABEL: dict[str, Shape] = {"id": STRING, "name": STRING, "type": OneOf("system", "user")}
USER_LABEL: Shape = {**LABEL, "messageListVisibility": OneOf("show", "hide"),
                     "labelListVisibility": OneOf("labelShow", "labelShowIfUnread", "labelHide")}
LABELS: Shape = {"labels": [LABEL]}
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list
MESSAGE_IDS: Shape = {"messages": [{"id": STRING, "threadId": STRING}], "resultSizeEstimate": NUMBER}
MESSAGE_PAGE: Shape = {**MESSAGE_IDS, "nextPageToken": STRING}  # type: ignore[dict-item]
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages (format=raw)
RAW_MESSAGE: Shape = {"id": STRING, "threadId": STRING, "labelIds": [STRING], "snippet": STRING,
                      "historyId": STRING, "internalDate": STRING, "sizeEstimate": NUMBER, "raw": STRING}
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/send
SENT: Shape = {"id": STRING, "threadId": STRING, "labelIds": [OneOf("SENT", "INBOX", "UNREAD")]}
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/watch
WATCH: Shape = {"historyId": STRING, "expiration": STRING}
# Reference: https://developers.google.com/workspace/gmail/api/guides/push#receiving_notifications
PUSH: Shape = {"message": {"data": STRING, "messageId": STRING, "publishTime": STRING}, "subscription": STRING}
# The guide's example writes historyId as a string; Gmail's pushes carry a number. Either is taken.
PUSH_DATA: Shape = {"emailAddress": STRING, "historyId": (STRING, NUMBER)}


def error(status: int, reason: str, *, domain: str = "global", google_status: str | None = None) -> Shape:
    """Google's JSON error body with this status and reason."""
    # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
    # Reference: https://cloud.google.com/apis/design/errors#http_mapping
    body: dict[str, Shape] = {"code": NUMBER, "message": STRING,
                              "errors": [{"message": STRING, "domain": OneOf(domain), "reason": OneOf(reason)}]}
    if google_status:
        body["status"] = OneOf(google_status)
    return {"error": body}


def refused(call: Any) -> tuple[int, Any]:
    """Run a request that must fail; its status and JSON body."""
    with pytest.raises(HttpError) as raised:
        call.execute(num_retries=0)
    return int(raised.value.status_code), json.loads(raised.value.content)


# -- driving the sandbox -------------------------------------------------------------------------

@pytest.fixture
def gmail(sandbox: SandboxProcess) -> Iterator[Any]:
    create_account(sandbox, ALICE, display_name="Alice Gardner")
    client = service(sandbox, connect(sandbox, ALICE), "gmail")
    yield client
    client.close()


def mime(subject: str, *, sender: str = CUSTOMER, to: str = ALICE, message_id: str | None = None,
         attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="example.org")
    message["Date"] = "Tue, 01 Dec 2026 09:00:00 +0000"
    message.set_content("Hello")
    if attachment is not None:
        message.add_attachment(attachment, maintype="image", subtype="jpeg", filename="site.jpg")
    return bytes(message)


def put(sandbox: SandboxProcess, label: str, raw: bytes) -> str:
    created = sandbox.control("POST", f"/accounts/google/{ALICE}/messages", json={
        "folder": label, "raw_base64": base64.b64encode(raw).decode()})
    return str(created["id"])


def documented(shape: Shape, result: Any, what: str) -> Any:
    assert_shape(what, shape, result)
    return result


# -- OAuth 2.0 ---------------------------------------------------------------------------------

def test_consent_then_code_exchange_then_refresh_then_revoke(sandbox: SandboxProcess) -> None:
    create_account(sandbox, ALICE)
    flow = new_flow(sandbox)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    redirect = sign_in(sandbox, url, ALICE)
    # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#handlingresponse
    assert isinstance(redirect, Redirect) and redirect.query["state"] == state and redirect.query["code"]
    session = browser(sandbox)
    token = f"{sandbox.base_url}/token"
    exchanged = check(CODE_EXCHANGED, session.post(token, data={
        "grant_type": "authorization_code", "code": redirect.query["code"], "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT_URI, "code_verifier": flow.code_verifier}))
    check(REFRESHED, session.post(token, data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                               "client_secret": CLIENT_SECRET,
                                               "refresh_token": exchanged["refresh_token"]}))
    check(REVOKED, session.post(f"{sandbox.base_url}/revoke", data={"token": exchanged["refresh_token"]}))
    # Reference: https://developers.google.com/identity/protocols/oauth2#expiration (a revoked grant)
    check(Documented(400, {**TOKEN_ERROR, "error": OneOf("invalid_grant")}),
          session.post(token, data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                    "client_secret": CLIENT_SECRET, "refresh_token": exchanged["refresh_token"]}))
    check(Documented(400, {**TOKEN_ERROR, "error": OneOf("invalid_token")}),
          session.post(f"{sandbox.base_url}/revoke", data={"token": exchanged["refresh_token"]}))


def test_a_cancelled_consent_comes_back_with_access_denied(sandbox: SandboxProcess) -> None:
    create_account(sandbox, ALICE)
    url, state = new_flow(sandbox).authorization_url(access_type="offline", prompt="consent")
    redirect = sign_in(sandbox, url, ALICE, cancel=True)
    assert isinstance(redirect, Redirect)
    assert (redirect.query["error"], redirect.query["state"]) == ("access_denied", state)


# -- who signed in ---------------------------------------------------------------------------

def test_get_profile(gmail: Any) -> None:
    profile = documented(PROFILE, run(gmail.users().getProfile(userId="me")), "users.getProfile")
    assert profile["emailAddress"] == ALICE


def test_list_send_as(sandbox: SandboxProcess, gmail: Any) -> None:
    create_account(sandbox, "office@greenleaf-landscaping.com", kind="alias", alias_of=ALICE)
    send_as = documented(SEND_AS, run(gmail.users().settings().sendAs().list(userId="me")), "sendAs.list")
    primary, alias = send_as["sendAs"]
    assert_shape("the primary address", PRIMARY_SEND_AS, primary)
    assert (primary["sendAsEmail"], primary["isPrimary"], alias["sendAsEmail"]) == (
        ALICE, True, "office@greenleaf-landscaping.com")


# -- labels and messages -----------------------------------------------------------------------

def test_list_and_create_labels(gmail: Any) -> None:
    documented(LABELS, run(gmail.users().labels().list(userId="me")), "labels.list")
    created = documented(USER_LABEL, run(gmail.users().labels().create(userId="me", body={
        "name": "Aspire", "labelListVisibility": "labelShow", "messageListVisibility": "show"})), "labels.create")
    assert created["type"] == "user"
    status, body = refused(gmail.users().labels().create(userId="me", body={"name": "aspire"}))
    assert status == 409
    assert_shape("a duplicate label", error(409, "duplicate", google_status="ALREADY_EXISTS"), body)


def test_list_messages_of_a_label_in_pages(sandbox: SandboxProcess, gmail: Any) -> None:
    for n in range(3):
        put(sandbox, "INBOX", mime(f"Estimate {n}"))
    first = documented(MESSAGE_PAGE, run(gmail.users().messages().list(userId="me", labelIds=["INBOX"],
                                                                       maxResults=2)), "messages.list")
    rest = documented(MESSAGE_IDS, run(gmail.users().messages().list(
        userId="me", labelIds=["INBOX"], maxResults=2, pageToken=first["nextPageToken"])), "messages.list")
    assert len(first["messages"]) + len(rest["messages"]) == 3
    status, body = refused(gmail.users().messages().list(userId="me", labelIds=["Label_99"]))
    assert status == 400
    assert_shape("an unknown label", error(400, "invalidArgument", google_status="INVALID_ARGUMENT"), body)
    assert body["error"]["message"] == "Invalid label: Label_99"


def test_get_a_message_raw(sandbox: SandboxProcess, gmail: Any) -> None:
    raw = mime("Plans", attachment=os.urandom(5000))
    message_id = put(sandbox, "INBOX", raw)
    message = documented(RAW_MESSAGE, run(gmail.users().messages().get(userId="me", id=message_id, format="raw")),
                         "messages.get")
    assert base64.urlsafe_b64decode(message["raw"]) == raw
    status, body = refused(gmail.users().messages().get(userId="me", id="0000000000000000", format="raw"))
    assert status == 404
    assert_shape("a message that is gone", error(404, "notFound", google_status="NOT_FOUND"), body)


def test_batch_modify_moves_messages_between_labels(sandbox: SandboxProcess, gmail: Any) -> None:
    ids = [put(sandbox, "INBOX", mime(f"Move {n}")) for n in range(3)]
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/batchModify
    result = run(gmail.users().messages().batchModify(userId="me", body={
        "ids": [*ids, "0000000000000000"], "addLabelIds": ["STARRED"], "removeLabelIds": ["INBOX"]}))
    assert result == ""  # an empty body
    listed = run(gmail.users().messages().list(userId="me", labelIds=["STARRED"]))
    assert {m["id"] for m in listed["messages"]} == set(ids)


def test_send_as_json_and_as_an_upload(sandbox: SandboxProcess, gmail: Any) -> None:
    create_account(sandbox, CUSTOMER)
    small = documented(SENT, run(gmail.users().messages().send(userId="me", body={
        "raw": base64.urlsafe_b64encode(mime("Invoice", sender=ALICE, to=CUSTOMER)).decode()})), "messages.send")
    assert small["labelIds"] == ["SENT"]
    large = mime("Photos", sender=ALICE, to=CUSTOMER, attachment=os.urandom(2 * MB))
    upload = MediaInMemoryUpload(large, mimetype="message/rfc822", resumable=False)
    uploaded = documented(SENT, run(gmail.users().messages().send(userId="me", media_body=upload)), "messages.send")
    assert base64.urlsafe_b64decode(run(gmail.users().messages().get(userId="me", id=uploaded["id"],
                                                                     format="raw"))["raw"]) == large
    time.sleep(1.1)  # past the second whose quota the two sends spent
    status, body = refused(gmail.users().messages().send(userId="me", body={"raw": base64.urlsafe_b64encode(
        large).decode()}))
    assert status == 400
    assert body["error"]["message"] == "Request payload size exceeds the limit: 1048576 bytes."
    status, body = refused(gmail.users().messages().send(userId="me", body={
        "raw": base64.urlsafe_b64encode(b"Subject: nobody\r\n\r\nHi\r\n").decode()}))
    assert status == 400 and body["error"]["message"] == "Recipient address required"


def test_an_upload_over_35_mb_is_refused(sandbox: SandboxProcess) -> None:
    create_account(sandbox, ALICE)
    token = connect(sandbox, ALICE).token
    # The client library refuses media over the discovery document's maxSize before sending, so
    # this goes out by hand, as another client might send it.
    answer = requests.post(f"{sandbox.base_url}/upload/gmail/v1/users/me/messages/send?uploadType=media",
                           data=b"x" * (36_700_160 + 1), headers={"Authorization": f"Bearer {token}",
                                                                   "Content-Type": "message/rfc822"},
                           verify=str(sandbox.ca_path), timeout=60)
    assert answer.status_code == 413
    assert_shape("an upload too large", error(413, "uploadTooLarge"), answer.json())


def test_find_a_message_by_its_message_id_drafts_aside(sandbox: SandboxProcess, gmail: Any) -> None:
    raw = mime("Estimate 42", sender=ALICE, to=CUSTOMER, message_id="<estimate-42@greenleaf-landscaping.com>")
    put(sandbox, "DRAFT", raw)
    query = "rfc822msgid:estimate-42@greenleaf-landscaping.com -in:drafts"
    nothing = run(gmail.users().messages().list(userId="me", q=query, includeSpamTrash=True, maxResults=1))
    assert nothing == {"resultSizeEstimate": 0}
    run(gmail.users().messages().send(userId="me", body={"raw": base64.urlsafe_b64encode(raw).decode()}))
    found = documented(MESSAGE_IDS, run(gmail.users().messages().list(userId="me", q=query, includeSpamTrash=True,
                                                                      maxResults=1)), "messages.list q=")
    assert len(found["messages"]) == 1


# -- push: watch, its notifications, stop ---------------------------------------------------

def test_watch_push_and_stop(sandbox: SandboxProcess, gmail: Any) -> None:
    aspire = run(gmail.users().labels().create(userId="me", body={"name": "Aspire"}))["id"]
    with push_receiver() as (url, received):
        sandbox.control("PUT", "/pubsub/topics/projects/aspire/topics/gmail", json={"push_endpoint": url})
        watch = documented(WATCH, run(gmail.users().watch(userId="me", body={
            "topicName": "projects/aspire/topics/gmail", "labelIds": [aspire], "labelFilterBehavior": "include"})),
            "users.watch")
        put(sandbox, aspire, mime("New lead"))
        delivery = received.get(timeout=10)
    push = json.loads(delivery.body)
    assert_shape("a Pub/Sub push", PUSH, push)
    data = json.loads(base64.b64decode(push["message"]["data"]))
    assert_shape("its data", PUSH_DATA, data)
    assert data["emailAddress"] == ALICE and int(data["historyId"]) > int(watch["historyId"])
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/stop
    assert run(gmail.users().stop(userId="me")) == ""
    time.sleep(1.1)  # past the second whose quota watch and stop spent
    status, body = refused(gmail.users().watch(userId="me", body={"topicName": "not a topic"}))
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalidArgument"


# -- errors every call can meet ----------------------------------------------------------------

def test_invalid_credentials(sandbox: SandboxProcess) -> None:
    create_account(sandbox, ALICE)
    answer = requests.get(f"{sandbox.base_url}/gmail/v1/users/me/profile", headers={"Authorization": "Bearer nope"},
                          verify=str(sandbox.ca_path), timeout=10)
    check(Documented(401, error(401, "authError", google_status="UNAUTHENTICATED")), answer)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_insufficient_permissions(sandbox: SandboxProcess) -> None:
    create_account(sandbox, ALICE)
    calendar_only = connect(sandbox, ALICE, scopes=["https://www.googleapis.com/auth/calendar.events"])
    client = service(sandbox, calendar_only, "gmail")
    status, body = refused(client.users().getProfile(userId="me"))
    assert status == 403
    assert_shape("a scope not granted", error(403, "insufficientPermissions", google_status="PERMISSION_DENIED"),
                 body)


@pytest.mark.parametrize(("status", "reason"), [(429, "rateLimitExceeded"), (429, "userRateLimitExceeded"),
                                                (403, "userRateLimitExceeded"), (403, "rateLimitExceeded")])
def test_rate_limits_in_both_documented_forms(sandbox: SandboxProcess, gmail: Any, status: int, reason: str) -> None:
    sandbox.control("POST", "/faults", json={"kind": "status", "status": status, "reason": reason,
                                            "path": "/messages$"})
    answer_status, body = refused(gmail.users().messages().list(userId="me"))
    assert answer_status == status
    assert_shape("a rate limit", error(status, reason, domain="usageLimits"), body)


def test_the_per_user_quota_answers_in_the_chosen_form(sandbox: SandboxProcess, gmail: Any) -> None:
    sandbox.control("POST", "/limits", json={"enabled": True, "gmail_rate_limit_status": 403})
    statuses = []
    for _ in range(3):  # 100 quota units each against 250 a second (the topic is unknown: 404)
        status, body = refused(gmail.users().watch(userId="me", body={"topicName": "projects/p/topics/t"}))
        statuses.append(status)
    assert statuses == [404, 404, 403]
    assert_shape("the per-user quota", error(403, "userRateLimitExceeded", domain="usageLimits"), body)


def test_server_errors(sandbox: SandboxProcess, gmail: Any) -> None:
    for status in (500, 503):
        sandbox.control("POST", "/faults", json={"kind": "status", "status": status, "path": "/profile$"})
        answer_status, body = refused(gmail.users().getProfile(userId="me"))
        assert answer_status == status
        assert_shape("a server error", error(status, "backendError"), body)


def test_unknown_routes_answer_in_googles_shape(sandbox: SandboxProcess, gmail: Any) -> None:
    token = gmail._http.credentials.token
    for method, path in (("GET", "/gmail/v1/users/me/nonsense"), ("DELETE", "/gmail/v1/users/me/profile"),
                         ("POST", "/resumable/upload/gmail/v1/users/me/messages/send")):
        answer = requests.request(method, f"{sandbox.base_url}{path}", headers={"Authorization": f"Bearer {token}"},
                                  verify=str(sandbox.ca_path), timeout=10)
        check(Documented(404, error(404, "notFound", google_status="NOT_FOUND")), answer)
    oauth = requests.get(f"{sandbox.base_url}/o/oauth2/nonsense", verify=str(sandbox.ca_path), timeout=10)
    check(Documented(404, TOKEN_ERROR), oauth)
