"""Contract: each Microsoft identity and Graph call the product makes for sign-in, mail, sending and
push, and each documented error answer it handles, against the sandbox, checked with shapes written
from the documented example responses (see contract.py). docs/providers.md lists the calls with
their documentation and names these tests."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.runner import SandboxProcess

from .contract import NULL, NUMBER, OBJECT, STRING, Documented, OneOf, Shape, assert_shape, check
from .microsoft_client import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPES, Graph, SignIn, ca_session, msal_app
from .test_graph_fidelity import ERROR, ERROR_BODY, MAIL_FOLDER, RECIPIENT, SUBSCRIPTION_CREATED

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

EMAIL = "ana@acme.test"
MB = 1024 * 1024


# -- documented shapes: the identity platform ---------------------------------------------------

# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#sample-response
OPENID_CONFIGURATION = Documented(200, {
    "authorization_endpoint": STRING, "token_endpoint": STRING, "token_endpoint_auth_methods_supported": [STRING],
    "jwks_uri": STRING, "response_modes_supported": [STRING], "subject_types_supported": [STRING],
    "id_token_signing_alg_values_supported": [STRING], "response_types_supported": [STRING],
    "scopes_supported": [STRING], "issuer": STRING, "request_uri_parameter_supported": "bool",
    "http_logout_supported": "bool", "frontchannel_logout_supported": "bool", "end_session_endpoint": STRING,
    "claims_supported": [STRING], "tenant_region_scope": (STRING, NULL), "cloud_instance_name": STRING,
    "cloud_graph_host_name": STRING, "msgraph_host": STRING,
})
# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#successful-response-2
TOKEN = Documented(200, {"access_token": STRING, "token_type": OneOf("Bearer"), "expires_in": NUMBER,
                         "scope": STRING, "refresh_token": STRING, "id_token": STRING})
# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response-1
TOKEN_ERROR: dict[str, Shape] = {"error": STRING, "error_description": STRING, "error_codes": [NUMBER],
                                 "timestamp": STRING, "trace_id": STRING, "correlation_id": STRING}

# -- documented shapes: Graph ------------------------------------------------------------------

# Reference: https://learn.microsoft.com/en-us/graph/api/user-get (Example 3, $select)
ME_SELECTED = Documented(200, {"@odata.context": STRING, "id": STRING, "displayName": STRING, "mail": STRING,
                               "userPrincipalName": STRING, "proxyAddresses": [STRING]})
# Reference: https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings (Example 4)
USER_PURPOSE = Documented(200, {"@odata.context": STRING,
                                "userPurpose": OneOf("user", "linked", "shared", "room", "equipment", "others")})
# Reference: https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders (with $select)
FOLDERS_SELECTED = Documented(200, {"@odata.context": STRING, "value": [{"id": STRING, "displayName": STRING}]})
FOLDER_CREATED = Documented(201, MAIL_FOLDER)
FOLDER_ID = Documented(200, {"@odata.context": STRING, "id": STRING})
# Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages
LISTED_MESSAGES = Documented(200, {"@odata.context": STRING, "@odata.nextLink": STRING,
                                   "value": [{"@odata.etag": STRING, "id": STRING, "internetMessageId": STRING}]})
FOUND_MESSAGES = Documented(200, {"@odata.context": STRING, "value": [{"@odata.etag": STRING, "id": STRING}]})
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/message (properties)
MESSAGE: dict[str, Shape] = {
    "@odata.etag": STRING, "id": STRING, "createdDateTime": STRING, "lastModifiedDateTime": STRING,
    "changeKey": STRING, "categories": [STRING], "receivedDateTime": STRING, "sentDateTime": STRING,
    "hasAttachments": "bool", "internetMessageId": STRING, "subject": STRING, "bodyPreview": STRING,
    "importance": OneOf("low", "normal", "high"), "parentFolderId": STRING, "conversationId": STRING,
    "conversationIndex": STRING, "isDeliveryReceiptRequested": ("bool", NULL), "isReadReceiptRequested": "bool",
    "isRead": "bool", "isDraft": "bool", "webLink": STRING, "inferenceClassification": OneOf("focused", "other"),
    "body": {"contentType": OneOf("text", "html"), "content": STRING}, "sender": RECIPIENT, "from": RECIPIENT,
    "toRecipients": [RECIPIENT], "ccRecipients": [RECIPIENT], "bccRecipients": [RECIPIENT], "replyTo": [RECIPIENT],
    "flag": {"flagStatus": STRING},
}
# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages (Example 3, MIME format)
DRAFT_CREATED = Documented(201, {"@odata.context": STRING, **MESSAGE})
# Reference: https://learn.microsoft.com/en-us/graph/api/message-move
MOVED = {"@odata.context": STRING, "@odata.type": OneOf("#microsoft.graph.message"), **MESSAGE}
# Reference: https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
THROTTLED_STEP: Shape = {"id": STRING, "status": NUMBER, "headers": {"Retry-After": STRING},
                         "body": {"error": {"code": STRING, "message": STRING}}}
# Reference: https://learn.microsoft.com/en-us/graph/api/user-sendmail ("202 Accepted ... no body")
# Reference: https://learn.microsoft.com/en-us/graph/api/message-send
ACCEPTED = Documented(202, None)
DELETED = Documented(204, None)
# Reference: https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
UPLOAD_SESSION = Documented(201, {"@odata.context": STRING, "uploadUrl": STRING, "expirationDateTime": STRING,
                                  "nextExpectedRanges": [STRING]})
# Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments#response
UPLOADED_RANGE = Documented(200, {"@odata.context": STRING, "ExpirationDateTime": STRING,
                                  "nextExpectedRanges": [STRING]})
# Reference: https://learn.microsoft.com/en-us/graph/api/message-post-attachments (file attachment)
FILE_ATTACHMENT = Documented(201, {
    "@odata.context": STRING, "@odata.type": OneOf("#microsoft.graph.fileAttachment"), "id": STRING,
    "lastModifiedDateTime": STRING, "name": STRING, "contentType": STRING, "size": NUMBER, "isInline": "bool",
    "contentId": (STRING, NULL), "contentLocation": (STRING, NULL), "contentBytes": STRING,
})
# Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions (response)
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/subscription (properties)
assert isinstance(SUBSCRIPTION_CREATED.body, dict)
SUBSCRIPTION: dict[str, Shape] = {
    **SUBSCRIPTION_CREATED.body, "includeResourceData": "bool",
    "encryptionCertificate": (STRING, NULL), "encryptionCertificateId": (STRING, NULL),
    "lifecycleNotificationUrl": (STRING, NULL),
}
SUBSCRIPTION_RENEWED = Documented(200, SUBSCRIPTION)
# Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#change-notification-example
CHANGE_NOTIFICATION: Shape = {"value": [{
    "subscriptionId": STRING, "subscriptionExpirationDateTime": STRING, "changeType": OneOf("created"),
    "resource": STRING, "resourceData": {"@odata.type": STRING, "@odata.id": STRING, "@odata.etag": STRING,
                                         "id": STRING},
    "clientState": STRING, "tenantId": STRING,
}]}


def error(status: int, code: str) -> Documented:
    """A Graph error answer: the documented envelope, with this status and code."""
    # Reference: https://learn.microsoft.com/en-us/graph/errors
    return Documented(status, {"error": {**ERROR, "code": OneOf(code)}})


# -- driving the sandbox -------------------------------------------------------------------------

@pytest.fixture
def session(sandbox: SandboxProcess) -> requests.Session:
    return ca_session(sandbox)


def redeem(sandbox: SandboxProcess, session: requests.Session, email: str) -> tuple[requests.Response, SignIn]:
    """Sign in on the sandbox's pages as msal starts it, and redeem the code at the token endpoint."""
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    redirect = flow.password(email)
    params = SignIn.redirect_params(redirect)
    response = session.post(f"{sandbox.base_url}/organizations/oauth2/v2.0/token", data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "code": params["code"], "redirect_uri": REDIRECT_URI, "code_verifier": flow.flow["code_verifier"],
        "scope": " ".join([*SCOPES, "offline_access", "openid", "profile"]),
    })
    return response, flow


@pytest.fixture
def graph(sandbox: SandboxProcess, session: requests.Session) -> Graph:
    sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": EMAIL, "display_name": "Ana Lopez"})
    token, _ = redeem(sandbox, session, EMAIL)
    return Graph(sandbox, token.json()["access_token"])


def mime(subject: str, *, message_id: str, attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"Ana Lopez <{EMAIL}>", "dana@example.com", subject
    message["Message-ID"] = message_id
    message.set_content("Hello Dana")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="plan.pdf")
    return message.as_bytes()


def put(sandbox: SandboxProcess, folder: str, subject: str) -> dict[str, Any]:
    raw = mime(subject, message_id=f"<{subject.replace(' ', '.')}@example.com>").decode()
    result: dict[str, Any] = sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/messages",
                                             json={"folder": folder, "raw": raw})
    return result


def folder(graph: Graph, name: str) -> str:
    folder_id: str = graph.ok("POST", "me/mailFolders", json={"displayName": name})["id"]
    return folder_id


def as_mime(raw: bytes) -> dict[str, Any]:
    return {"data": base64.b64encode(raw), "headers": {"Content-Type": "text/plain"}}


# -- identity ----------------------------------------------------------------------------------

def test_openid_configuration(session: requests.Session, sandbox: SandboxProcess) -> None:
    check(OPENID_CONFIGURATION, session.get(f"{sandbox.base_url}/organizations/v2.0/.well-known/openid-configuration"))


def test_authorize_then_token_then_refresh(sandbox: SandboxProcess, session: requests.Session) -> None:
    sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": EMAIL})
    token, _ = redeem(sandbox, session, EMAIL)
    body = check(TOKEN, token)
    refreshed = check(TOKEN, session.post(f"{sandbox.base_url}/organizations/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": body["refresh_token"], "scope": " ".join([*SCOPES, "offline_access", "openid", "profile"])}))
    assert refreshed["refresh_token"] != body["refresh_token"]  # rotated

    # The spent refresh token is refused, as the platform refuses a grant that has ended.
    refused = session.post(f"{sandbox.base_url}/organizations/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": body["refresh_token"]})
    found = check(Documented(400, {**TOKEN_ERROR, "error": OneOf("invalid_grant")}), refused)
    assert found["error_description"].startswith("AADSTS")


def test_a_wrong_client_secret(sandbox: SandboxProcess, session: requests.Session) -> None:
    refused = session.post(f"{sandbox.base_url}/organizations/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": "wrong", "refresh_token": "x"})
    check(Documented(401, {**TOKEN_ERROR, "error": OneOf("invalid_client")}), refused)


def test_a_cancelled_sign_in_comes_back_with_access_denied(sandbox: SandboxProcess, session: requests.Session) -> None:
    sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": EMAIL})
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    cancelled = flow.cancel()
    # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response
    query = parse_qs(urlsplit(cancelled.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [flow.flow["state"]]
    # Backing out of the sign-in pages carries error_subcode=cancel; declining consent, AADSTS65004.
    assert query.get("error_subcode") == ["cancel"] or query["error_description"][0].startswith("AADSTS65004")


# -- who signed in ---------------------------------------------------------------------------

def test_me_with_select(sandbox: SandboxProcess, graph: Graph) -> None:
    sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": "sales@acme.test", "kind": "alias",
                                               "alias_of": EMAIL})
    me = check(ME_SELECTED, graph.get("me", params={"$select": "id,displayName,mail,userPrincipalName,"
                                                                "proxyAddresses"}))
    assert me["proxyAddresses"] == [f"SMTP:{EMAIL}", "smtp:sales@acme.test"]
    assert set(me) == {"@odata.context", "id", "displayName", "mail", "userPrincipalName", "proxyAddresses"}


def test_mailbox_settings_user_purpose(graph: Graph) -> None:
    settings = check(USER_PURPOSE, graph.get("me/mailboxSettings", params={"$select": "userPurpose"}))
    assert set(settings) == {"@odata.context", "userPurpose"}


# -- folders and messages ----------------------------------------------------------------------

def test_list_and_create_folders(graph: Graph) -> None:
    created = check(FOLDER_CREATED, graph.post("me/mailFolders", json={"displayName": "Aspire"}))
    check(error(409, "ErrorFolderExists"), graph.post("me/mailFolders", json={"displayName": "aspire"}))
    listed = check(FOLDERS_SELECTED, graph.get("me/mailFolders", params={
        "$select": "id,displayName", "$top": 100, "includeHiddenFolders": "true"}))
    assert created["id"] in {f["id"] for f in listed["value"]}
    check(FOLDER_ID, graph.get(f"me/mailFolders/{created['id']}", params={"$select": "id"}))
    check(error(404, "ErrorItemNotFound"), graph.get("me/mailFolders/AAMkADFldgone", params={"$select": "id"}))


def test_list_a_folders_messages(sandbox: SandboxProcess, graph: Graph) -> None:
    aspire = folder(graph, "Aspire")
    for n in range(3):
        put(sandbox, "Aspire", f"Estimate {n}")
    page = check(LISTED_MESSAGES, graph.get(f"me/mailFolders/{aspire}/messages", params={
        "$select": "id,internetMessageId", "$top": 2}))
    rest = check(Documented(200, {"@odata.context": STRING, "value": [OBJECT]}), graph.get(page["@odata.nextLink"]))
    assert len(page["value"]) + len(rest["value"]) == 3


def test_get_a_messages_mime(sandbox: SandboxProcess, graph: Graph) -> None:
    raw = mime("Plans", message_id="<plans@example.com>", attachment=os.urandom(1000))
    stored = sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/messages",
                             json={"folder": "Inbox", "raw_base64": base64.b64encode(raw).decode()})
    # Reference: https://learn.microsoft.com/en-us/graph/outlook-get-mime-message
    response = graph.get(f"me/messages/{stored['immutable_id']}/$value")
    assert response.status_code == 200 and response.content == raw
    assert response.headers["Content-Type"] == "text/plain"
    check(error(404, "ErrorItemNotFound"), graph.get("me/messages/AAkALggone/$value"))


def test_move_in_a_batch_and_a_step_over_the_mailboxs_concurrency(sandbox: SandboxProcess, graph: Graph) -> None:
    processed = folder(graph, "Processed")
    ids = [put(sandbox, "Inbox", f"Move {n}")["immutable_id"] for n in range(6)]
    steps = [{"id": str(n), "method": "POST", "url": f"/me/messages/{message_id}/move",
              "headers": {"Content-Type": "application/json", "Prefer": 'IdType="ImmutableId"'},
              "body": {"destinationId": processed}} for n, message_id in enumerate(ids)]
    batch = check(Documented(200, {"responses": [{"id": STRING, "status": NUMBER, "headers": OBJECT,
                                                   "body": OBJECT}]}), graph.post("$batch", json={"requests": steps}))
    answers = {answer["id"]: answer for answer in batch["responses"]}
    moved = [answer for answer in answers.values() if answer["status"] == 201]
    throttled = [answer for answer in answers.values() if answer["status"] == 429]
    assert (len(moved), len(throttled)) == (4, 2)
    for answer in moved:
        assert_shape("a moved message", MOVED, answer["body"])
    for answer in throttled:
        assert_shape("a throttled step", THROTTLED_STEP, answer)
        assert answer["body"]["error"]["code"] == "ApplicationThrottled"
    check(Documented(400, ERROR_BODY), graph.post("$batch", json={"requests": steps * 4}))  # 24 > 20


def test_send_mail_with_mime_and_its_refusals(sandbox: SandboxProcess, graph: Graph) -> None:
    check(ACCEPTED, graph.post("me/sendMail", **as_mime(mime("Invoice", message_id="<invoice@acme.test>"))))
    # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages (malformed MIME)
    check(error(400, "ErrorMimeContentInvalidBase64String"),
          graph.post("me/sendMail", data=b"not base64!", headers={"Content-Type": "text/plain"}))
    too_big = mime("Big", message_id="<big@acme.test>", attachment=os.urandom(3 * MB + 1))
    check(Documented(413, ERROR_BODY), graph.post("me/sendMail", **as_mime(too_big)))
    # Exchange Online's 30 messages a minute, here scaled to 2.
    sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": 2})
    check(ACCEPTED, graph.post("me/sendMail", **as_mime(mime("Second", message_id="<second@acme.test>"))))
    over = graph.post("me/sendMail", **as_mime(mime("Third", message_id="<third@acme.test>")))
    check(error(429, "ApplicationThrottled"), over)
    assert int(over.headers["Retry-After"]) >= 1


def test_find_a_message_by_its_message_id_drafts_aside(sandbox: SandboxProcess, graph: Graph) -> None:
    check(ACCEPTED, graph.post("me/sendMail", **as_mime(mime("Sent", message_id="<sent@acme.test>"))))
    for message_id in ("<sent@acme.test>", "<it's@acme.test>"):
        quoted = message_id.replace("'", "''")
        found = check(FOUND_MESSAGES, graph.get("me/messages", params={
            "$filter": f"internetMessageId eq '{quoted}' and isDraft eq false", "$select": "id", "$top": 1}))
        assert len(found["value"]) == (1 if message_id == "<sent@acme.test>" else 0)
    check(error(400, "ErrorInvalidUrlQueryFilter"),
          graph.get("me/messages", params={"$filter": "startswith(subject,'S')"}))


def test_a_large_message_as_a_draft_with_an_upload_session(sandbox: SandboxProcess, graph: Graph) -> None:
    draft = check(DRAFT_CREATED, graph.post("me/messages", **as_mime(mime("Survey", message_id="<survey@acme.test>"))))
    assert (draft["isDraft"], draft["internetMessageId"]) == (True, "<survey@acme.test>")
    path = f"me/messages/{draft['id']}"
    check(error(400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"),
          graph.post(f"{path}/attachments/createUploadSession", json={"AttachmentItem": {
              "attachmentType": "file", "name": "small.pdf", "size": 1000}}))
    content = os.urandom(5 * MB)
    session = check(UPLOAD_SESSION, graph.post(f"{path}/attachments/createUploadSession", json={"AttachmentItem": {
        "attachmentType": "file", "name": "survey.pdf", "size": len(content), "contentType": "application/pdf"}}))
    assert session["nextExpectedRanges"] == ["0-"]
    uploader = ca_session(sandbox)  # no bearer token: the URL is pre-authorised
    first = uploader.put(session["uploadUrl"], data=content[:3 * MB], headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"bytes 0-{3 * MB - 1}/{len(content)}"})
    assert check(UPLOADED_RANGE, first)["nextExpectedRanges"] == [str(3 * MB)]
    rest = f"bytes {3 * MB}-{len(content) - 1}/{len(content)}"
    last = uploader.put(session["uploadUrl"], data=content[3 * MB:], headers={
        "Content-Type": "application/octet-stream", "Content-Range": rest})
    assert last.status_code == 201 and last.content == b"" and "/Attachments('" in last.headers["Location"]

    small = os.urandom(1000)
    attached = check(FILE_ATTACHMENT, graph.post(f"{path}/attachments", json={
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "notes.txt", "contentType": "text/plain",
        "contentBytes": base64.b64encode(small).decode()}))
    assert attached["size"] == 1000
    check(ACCEPTED, graph.post(f"{path}/send"))
    check(error(404, "ErrorItemNotFound"), graph.post(f"{path}/send"))  # the draft is now in Sent Items


def test_delete_a_left_over_draft(graph: Graph) -> None:
    draft = check(DRAFT_CREATED, graph.post("me/messages", **as_mime(mime("Left", message_id="<left@acme.test>"))))
    check(DELETED, graph.request("DELETE", f"me/messages/{draft['id']}"))
    check(error(404, "ErrorItemNotFound"), graph.request("DELETE", f"me/messages/{draft['id']}"))


# -- push: subscriptions and their notifications ------------------------------------------------

class Webhook:
    """A notification URL on loopback: echoes validation tokens, keeps what is POSTed."""

    def __init__(self) -> None:
        received: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.put((self.path, self.headers.get("Content-Type", ""), body))
                token = parse_qs(urlsplit(self.path).query).get("validationToken", [""])[0].encode()
                self.send_response(200 if token else 202)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(token)))
                self.end_headers()
                self.wfile.write(token)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/graph"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout: float = 10) -> tuple[str, str, bytes]:
        return self.received.get(timeout=timeout)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def expiring_in(minutes: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def test_subscribe_validate_notify_renew_and_delete(sandbox: SandboxProcess, graph: Graph, webhook: Webhook) -> None:
    aspire = folder(graph, "Aspire")
    created = check(Documented(201, SUBSCRIPTION), graph.post("subscriptions", json={
        "changeType": "created", "notificationUrl": webhook.url, "resource": f"me/mailFolders('{aspire}')/messages",
        "expirationDateTime": expiring_in(4200), "clientState": "aspire-secret"}))
    assert created["includeResourceData"] is False
    # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notificationurl-validation
    path, content_type, _ = webhook.next()
    assert parse_qs(urlsplit(path).query)["validationToken"] and content_type.startswith("text/plain")

    put(sandbox, "Aspire", "New lead")
    _, content_type, body = webhook.next()
    assert content_type.startswith("application/json")
    notification = json.loads(body)
    assert_shape("a change notification", CHANGE_NOTIFICATION, notification)
    assert notification["value"][0]["clientState"] == "aspire-secret"

    renewed = check(SUBSCRIPTION_RENEWED, graph.request("PATCH", f"subscriptions/{created['id']}",
                                                        json={"expirationDateTime": expiring_in(4000)}))
    assert renewed["expirationDateTime"] != created["expirationDateTime"]
    check(error(400, "InvalidRequest"), graph.request("PATCH", f"subscriptions/{created['id']}",
                                                      json={"expirationDateTime": expiring_in(5000)}))
    check(DELETED, graph.request("DELETE", f"subscriptions/{created['id']}"))
    check(Documented(404, ERROR_BODY), graph.request("DELETE", f"subscriptions/{created['id']}"))


def test_a_notification_url_that_does_not_validate(graph: Graph) -> None:
    refused = graph.post("subscriptions", json={
        "changeType": "created", "notificationUrl": "http://127.0.0.1:9/nobody", "resource": "me/messages",
        "expirationDateTime": expiring_in(60)})
    check(error(400, "ValidationError"), refused)


# -- errors every call can meet ----------------------------------------------------------------

def test_an_expired_access_token(sandbox: SandboxProcess, graph: Graph) -> None:
    sandbox.control("POST", f"/microsoft/{EMAIL}/expire-access-tokens")
    refused = graph.get("me/mailFolders")
    check(error(401, "InvalidAuthenticationToken"), refused)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_over_the_mailboxs_concurrency(sandbox: SandboxProcess, graph: Graph) -> None:
    sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/busy", json={"requests": 4, "seconds": 2})
    refused = graph.get("me/mailFolders")
    check(error(429, "ApplicationThrottled"), refused)
    assert refused.headers["Retry-After"] == "1"
    time.sleep(2.2)
    assert graph.get("me/mailFolders").status_code == 200


def test_service_unavailable_with_retry_after(sandbox: SandboxProcess, graph: Graph) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/errors#http-status-codes
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 503, "retry_after": 5, "path": "/me$"})
    refused = graph.get("me")
    check(error(503, "ServiceUnavailable"), refused)
    assert refused.headers["Retry-After"] == "5"


# -- conventions: unknown routes, query parameter names, $select --------------------------------

def test_unknown_routes_answer_in_graphs_shape(graph: Graph) -> None:
    unknown = check(Documented(400, ERROR_BODY), graph.get("me/nonsense"))
    assert unknown["error"]["message"] == "Resource not found for the segment 'nonsense'."
    check(Documented(405, ERROR_BODY), graph.request("DELETE", "me"))
    step = graph.ok("POST", "$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me/nonsense"}]})
    assert_shape("an unknown batch step", {"id": STRING, "status": NUMBER, "body": ERROR_BODY},
                 step["responses"][0])


def test_mail_folders_delta_is_served_not_taken_for_a_folder_id(graph: Graph) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-delta
    first = graph.ok("GET", "me/mailFolders/delta")
    assert {"Inbox", "Drafts", "Sent Items"} <= {f["displayName"] for f in first["value"]}
    assert "@odata.deltaLink" in first
    aspire = folder(graph, "Aspire")
    changes = graph.ok("GET", first["@odata.deltaLink"])
    assert [f["id"] for f in changes["value"]] == [aspire]
    check(DELETED, graph.request("DELETE", f"me/mailFolders/{aspire}"))
    removed = graph.ok("GET", changes["@odata.deltaLink"])["value"]
    assert removed == [{"@odata.type": "#microsoft.graph.mailFolder", "id": aspire, "@removed": {"reason": "deleted"}}]


def test_query_parameter_names_are_taken_in_any_case_once_each(sandbox: SandboxProcess, graph: Graph) -> None:
    for n in range(3):
        put(sandbox, "Inbox", f"Case {n}")
    page = graph.ok("GET", "me/mailFolders/inbox/messages?$TOP=2&$Select=subject")
    assert len(page["value"]) == 2 and set(page["value"][0]) == {"@odata.etag", "id", "subject"}
    assert "%24top=2" in page["@odata.nextLink"] or "$top=2" in page["@odata.nextLink"]
    window = "startdatetime=2026-12-01T00:00:00Z&ENDDATETIME=2026-12-02T00:00:00Z"
    assert graph.get(f"me/calendarView?{window}").status_code == 200
    twice = check(Documented(400, ERROR_BODY), graph.get("me/messages?$top=1&$TOP=2"))
    assert "'$top' was specified more than once" in twice["error"]["message"]


@pytest.mark.parametrize(("path", "selected", "type_name"), [
    ("me/messages", "subject,uniqueness", "message"),
    ("me/mailFolders", "displayName,wellKnownName", "mailFolder"),
    ("me", "displayName,favoriteColor", "user"),
    ("me/mailboxSettings", "userPurpose,moodOfTheDay", "mailboxSettings"),
])
def test_select_of_a_property_the_sandbox_does_not_serve_is_refused(
        graph: Graph, path: str, selected: str, type_name: str) -> None:
    refused = check(Documented(400, ERROR_BODY), graph.get(path, params={"$select": selected}))
    unknown = selected.split(",")[1]
    assert refused["error"]["message"] == f"Could not find a property named '{unknown}' on type " \
                                          f"'microsoft.graph.{type_name}'."


def test_select_gives_what_graph_serves_only_when_asked(sandbox: SandboxProcess, graph: Graph) -> None:
    stored = put(sandbox, "Inbox", "Headers")
    plain = graph.ok("GET", f"me/messages/{stored['id']}")
    assert "internetMessageHeaders" not in plain and "uniqueBody" not in plain
    selected = graph.ok("GET", f"me/messages/{stored['id']}", params={"$select": "internetMessageHeaders,UNIQUEBODY"})
    headers = {header["name"]: header["value"] for header in selected["internetMessageHeaders"]}
    assert headers["Subject"] == "Headers" and headers["Message-ID"] == "<Headers@example.com>"
    assert selected["uniqueBody"] == {"contentType": "text", "content": "Hello Dana\n"}
