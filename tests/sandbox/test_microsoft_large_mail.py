"""Graph's size limits against the sandbox: request bodies of 4 MB at most (413 in Graph's shape),
drafts made from MIME, attachments in one request, and upload sessions with their chunk rules
(3 to 150 MB, byte ranges of 4 MB at most, in order, the last one answering 201 with a Location)."""

from __future__ import annotations

import base64
import email
import email.policy
import os
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from sandbox.runner import SandboxProcess

from .microsoft_client import Graph, ca_session, graph_for

EMAIL = "ana@acme.test"
MB = 1024 * 1024


@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, EMAIL, display_name="Ana Lopez")


def mime(subject: str, *, message_id: str, body: str = "Plans attached.", to: str = "client@example.com",
         attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ana Lopez <{EMAIL}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="plans.pdf")
    return message.as_bytes()


def make_draft(graph: Graph, raw: bytes) -> dict[str, Any]:
    response = graph.post("me/messages", data=base64.b64encode(raw), headers={"Content-Type": "text/plain"})
    assert response.status_code == 201, response.text
    draft: dict[str, Any] = response.json()
    return draft


def upload_session(graph: Graph, draft_id: str, size: int, name: str = "survey.pdf") -> requests.Response:
    return graph.post(f"me/messages/{draft_id}/attachments/createUploadSession", json={
        "AttachmentItem": {"attachmentType": "file", "name": name, "size": size, "contentType": "application/pdf"}})


def put_range(sandbox: SandboxProcess, url: str, content: bytes, start: int, end: int, total: int | None = None,
              **headers: str) -> requests.Response:
    # No Authorization header: the upload URL carries its own authorisation.
    session = ca_session(sandbox)
    return session.put(url, data=content[start:end + 1], headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {start}-{end}/{len(content) if total is None else total}", **headers})


def upload(sandbox: SandboxProcess, url: str, content: bytes, chunk: int = 3 * MB) -> list[requests.Response]:
    return [put_range(sandbox, url, content, start, min(start + chunk, len(content)) - 1)
            for start in range(0, len(content), chunk)]


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


def test_request_bodies_over_4_mb_are_refused_in_graphs_shape(graph: Graph) -> None:
    # The MIME's base64 is exactly 4 MB: taken. A little more: 413, and nothing is sent.
    fits = mime("Fits", message_id="<fits@acme.test>", body=("x" * 75 + "\n") * (3 * MB // 76 - 10))
    fits = fits + b" " * (3 * MB - len(fits))
    assert len(base64.b64encode(fits)) == 4 * MB
    assert graph.post("me/sendMail", data=base64.b64encode(fits), headers={"Content-Type": "text/plain"}
                      ).status_code == 202
    too_big = fits + b"   "
    for path, body, content_type in (
        ("me/sendMail", base64.b64encode(too_big), "text/plain"),
        ("me/messages", base64.b64encode(too_big), "text/plain"),
        ("$batch", b'{"requests": [' + b" " * (4 * MB) + b"]}", "application/json"),
    ):
        refused = graph.post(path, data=body, headers={"Content-Type": content_type})
        assert refused.status_code == 413, path
        error = refused.json()["error"]
        assert (error["code"], error["message"]) == ("BadRequest", "The maximum request length supported is 4MB.")
        assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    sent = graph.ok("GET", "me/mailFolders/sentitems/messages?$select=internetMessageId")["value"]
    assert [m["internetMessageId"] for m in sent] == ["<fits@acme.test>"]
    assert graph.ok("GET", "me/mailFolders/drafts/messages")["value"] == []


def test_a_draft_made_from_mime_keeps_its_message_id_and_is_not_sent_mail(graph: Graph) -> None:
    draft = make_draft(graph, mime("Proposal", message_id="<proposal-7@acme.test>", to="Dana <dana@example.com>"))
    assert (draft["isDraft"], draft["internetMessageId"], draft["subject"]) == (True, "<proposal-7@acme.test>",
                                                                                "Proposal")
    assert draft["toRecipients"] == [{"emailAddress": {"name": "Dana", "address": "dana@example.com"}}]
    assert draft["parentFolderId"] == graph.ok("GET", "me/mailFolders/drafts")["id"]

    def matching(filter_: str) -> list[str]:
        return [m["id"] for m in graph.ok("GET", "me/messages", params={"$filter": filter_, "$select": "id"})["value"]]

    wanted = "internetMessageId eq '<proposal-7@acme.test>'"
    assert matching(wanted) == [draft["id"]]
    assert matching(f"{wanted} and isDraft eq true") == [draft["id"]]
    assert matching(f"{wanted} and isDraft eq false") == []  # a draft is not sent mail
    assert graph.post(f"me/messages/{draft['id']}/send").status_code == 202
    assert matching(f"{wanted} and isDraft eq false") != []
    assert matching(f"{wanted} and isDraft eq true") == []


def test_an_upload_session_attaches_a_large_file_to_a_draft_that_then_goes_out(
        sandbox: SandboxProcess, graph: Graph) -> None:
    recipient = graph_for(sandbox, "dana@acme.test")
    survey = os.urandom(10 * MB + 123)
    draft = make_draft(graph, mime("Site survey", message_id="<survey-1@acme.test>", to="dana@acme.test"))

    created = upload_session(graph, draft["id"], len(survey))
    assert created.status_code == 201
    session = created.json()
    assert session["nextExpectedRanges"] == ["0-"] and session["uploadUrl"].startswith(sandbox.base_url)
    assert "expirationDateTime" in session and session["@odata.context"].endswith("#microsoft.graph.uploadSession")

    answers = upload(sandbox, session["uploadUrl"], survey)
    assert [a.status_code for a in answers] == [200, 200, 200, 201]
    assert [a.json()["nextExpectedRanges"] for a in answers[:3]] == [[str(3 * MB)], [str(6 * MB)], [str(9 * MB)]]
    assert answers[-1].content == b"" and "/Attachments('" in answers[-1].headers["Location"]

    assert graph.post(f"me/messages/{draft['id']}/send").status_code == 202
    [sent] = graph.ok("GET", "me/mailFolders/sentitems/messages")["value"]
    assert (sent["internetMessageId"], sent["isDraft"], sent["hasAttachments"]) == ("<survey-1@acme.test>", False,
                                                                                   True)
    assert graph.ok("GET", "me/mailFolders/drafts/messages")["value"] == []
    for mailbox, folder in ((graph, "sentitems"), (recipient, "inbox")):
        [copy] = mailbox.ok("GET", f"me/mailFolders/{folder}/messages?$select=id")["value"]
        parsed = email.message_from_bytes(mailbox.get(f"me/messages/{copy['id']}/$value").content,
                                          policy=email.policy.default)
        assert parsed["Message-ID"] == "<survey-1@acme.test>"
        [part] = parsed.iter_attachments()
        assert (part.get_filename(), part.get_content_type(), part.get_content()) == ("survey.pdf",
                                                                                      "application/pdf", survey)


def test_upload_ranges_come_in_order_and_within_the_rules(sandbox: SandboxProcess, graph: Graph) -> None:
    content = os.urandom(7 * MB)
    draft = make_draft(graph, mime("Photos", message_id="<photos@acme.test>"))
    url = upload_session(graph, draft["id"], len(content)).json()["uploadUrl"]

    # Out of order: the first range must start at byte 0.
    skipped = put_range(sandbox, url, content, 2 * MB, 3 * MB - 1)
    assert (skipped.status_code, error_code(skipped)) == (416, "ErrorInvalidRange")
    # More than 4 MB in one range.
    too_long = put_range(sandbox, url, content, 0, 4 * MB)
    assert too_long.status_code == 413
    # A total other than the size the session was made for, a range beyond the file, no Content-Range.
    assert error_code(put_range(sandbox, url, content, 0, MB - 1, total=len(content) + 1)) == "ErrorInvalidContentRange"
    assert put_range(sandbox, url, content, 0, len(content), total=len(content)).status_code == 400
    no_range = ca_session(sandbox).put(url, data=content[:MB], headers={"Content-Type": "application/octet-stream"})
    assert (no_range.status_code, error_code(no_range)) == (400, "ErrorInvalidContentRange")
    # A body that is not the range it names.
    short = ca_session(sandbox).put(url, data=content[:100], headers={"Content-Range": f"bytes 0-999/{len(content)}"})
    assert short.status_code == 400
    # Someone else's token.
    forged = put_range(sandbox, url.split("?authtoken=")[0] + "?authtoken=forged", content, 0, MB - 1)
    assert (forged.status_code, error_code(forged)) == (401, "InvalidAuthenticationToken")

    # Nothing of that was taken: in order, it works; a range sent twice is out of order.
    assert put_range(sandbox, url, content, 0, 4 * MB - 1).json()["nextExpectedRanges"] == [str(4 * MB)]
    assert put_range(sandbox, url, content, 0, 4 * MB - 1).status_code == 416
    assert put_range(sandbox, url, content, 4 * MB, len(content) - 1).status_code == 201
    assert put_range(sandbox, url, content, 4 * MB, len(content) - 1).status_code == 404  # the session is done


def test_an_upload_session_can_be_cancelled(sandbox: SandboxProcess, graph: Graph) -> None:
    content = os.urandom(4 * MB)
    draft = make_draft(graph, mime("Cancelled", message_id="<cancelled@acme.test>"))
    url = upload_session(graph, draft["id"], len(content)).json()["uploadUrl"]
    assert put_range(sandbox, url, content, 0, MB - 1).status_code == 200
    assert ca_session(sandbox).delete(url).status_code == 204
    assert put_range(sandbox, url, content, MB, 2 * MB - 1).status_code == 404
    raw = graph.get(f"me/messages/{draft['id']}/$value").content
    assert not list(email.message_from_bytes(raw, policy=email.policy.default).iter_attachments())


def test_upload_sessions_are_for_3_to_150_mb_within_the_message_size_limit(graph: Graph) -> None:
    draft = make_draft(graph, mime("Limits", message_id="<limits@acme.test>"))
    small = upload_session(graph, draft["id"], 2 * MB)
    assert (small.status_code, error_code(small)) == (400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
    assert upload_session(graph, draft["id"], 151 * MB).status_code == 400
    # 35 MB for the whole message, its attachments as encoded in its MIME (a third larger).
    assert upload_session(graph, draft["id"], 20 * MB).status_code == 201
    over = upload_session(graph, draft["id"], 27 * MB)
    assert (over.status_code, error_code(over)) == (400, "ErrorMessageSizeExceeded")
    missing = graph.post(f"me/messages/{draft['id']}/attachments/createUploadSession", json={"AttachmentItem": {
        "attachmentType": "file", "name": "x.pdf"}})
    assert missing.status_code == 400
    assert upload_session(graph, "AAkALgnot-a-message", 5 * MB).status_code == 404


def test_a_small_file_is_attached_in_one_request(graph: Graph) -> None:
    content = os.urandom(2 * MB)
    draft = make_draft(graph, mime("Small", message_id="<small@acme.test>"))
    created = graph.post(f"me/messages/{draft['id']}/attachments", json={
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "site.jpg", "contentType": "image/jpeg",
        "contentBytes": base64.b64encode(content).decode()})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["contentType"], body["size"], body["isInline"]) == ("site.jpg", "image/jpeg",
                                                                                  len(content), False)
    assert base64.b64decode(body["contentBytes"]) == content
    assert graph.ok("GET", f"me/messages/{draft['id']}")["hasAttachments"] is True
    raw = graph.get(f"me/messages/{draft['id']}/$value").content
    [part] = email.message_from_bytes(raw, policy=email.policy.default).iter_attachments()
    assert part.get_content() == content
    wrong = graph.post(f"me/messages/{draft['id']}/attachments", json={
        "@odata.type": "#microsoft.graph.itemAttachment", "name": "x"})
    assert wrong.status_code == 400
