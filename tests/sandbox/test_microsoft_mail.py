"""Outlook mail through Graph against the sandbox: folders, messages, delta, move, batch, send."""

from __future__ import annotations

import base64
import email
import email.policy
import time
from email.message import EmailMessage
from typing import Any

import pytest

from sandbox.runner import SandboxProcess

from .microsoft_client import Graph, graph_for

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def mime(subject: str, *, sender: str = "client@example.com", to: str = "ana@acme.test",
         attachment: bytes | None = None) -> str:
    message = EmailMessage()
    message["From"] = f"Client <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}-{time.monotonic_ns()}@example.com>"
    message["Date"] = "Tue, 01 Dec 2026 09:00:00 +0000"
    message.set_content(f"Body of {subject}")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="plan.pdf")
    return message.as_string()


def put(sandbox: SandboxProcess, folder: str, subject: str, email_address: str = "ana@acme.test") -> dict:
    result: dict = sandbox.control("POST", f"/accounts/microsoft/{email_address}/messages",
                                   json={"folder": folder, "raw": mime(subject)})
    return result


@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, "ana@acme.test", display_name="Ana Lopez")


def folder_named(graph: Graph, name: str) -> dict:
    return next(f for f in graph.ok("GET", "me/mailFolders")["value"] if f["displayName"] == name)


def test_well_known_folders_and_creating_folders(graph: Graph) -> None:
    names = {f["displayName"] for f in graph.ok("GET", "me/mailFolders")["value"]}
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items", "Archive"} <= names
    assert graph.ok("GET", "me/mailFolders/inbox")["displayName"] == "Inbox"

    aspire = graph.post("me/mailFolders", json={"displayName": "Aspire"})
    assert aspire.status_code == 201
    duplicate = graph.post("me/mailFolders", json={"displayName": "aspire"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "ErrorFolderExists"

    folder_id = aspire.json()["id"]
    child = graph.post(f"me/mailFolders/{folder_id}/childFolders", json={"displayName": "Processed"})
    assert child.status_code == 201 and child.json()["parentFolderId"] == folder_id
    assert graph.post(f"me/mailFolders/{folder_id}/childFolders", json={"displayName": "Processed"}).status_code == 409
    children = graph.ok("GET", f"me/mailFolders/{folder_id}/childFolders")["value"]
    assert [c["displayName"] for c in children] == ["Processed"]
    assert graph.ok("GET", f"me/mailFolders/{folder_id}")["childFolderCount"] == 1

    assert graph.request("DELETE", f"me/mailFolders/{folder_id}").status_code == 204
    assert graph.get(f"me/mailFolders/{folder_id}").status_code == 404
    assert graph.request("DELETE", "me/mailFolders/inbox").status_code == 403


def test_messages_put_through_the_control_api_list_page_and_read(sandbox: SandboxProcess, graph: Graph) -> None:
    graph.ok("POST", "me/mailFolders", json={"displayName": "Aspire"})
    for n in range(7):
        put(sandbox, "aspire", f"Quote {n}")
    folder = folder_named(graph, "Aspire")
    assert folder["totalItemCount"] == 7

    messages, _ = graph.pages(f"me/mailFolders/{folder['id']}/messages?$top=3&$select=subject,from")
    assert len(messages) == 7
    assert messages[0]["subject"] == "Quote 6"  # newest first
    assert set(messages[0]) == {"id", "@odata.etag", "subject", "from"}
    assert messages[0]["from"]["emailAddress"] == {"name": "Client", "address": "client@example.com"}

    full = graph.ok("GET", f"me/messages/{messages[0]['id']}")
    assert full["parentFolderId"] == folder["id"]
    assert full["internetMessageId"].startswith("<Quote-6-")
    assert full["bodyPreview"] == "Body of Quote 6"
    raw = graph.get(f"me/messages/{messages[0]['id']}/$value")
    assert raw.status_code == 200
    assert email.message_from_bytes(raw.content, policy=email.policy.default)["Subject"] == "Quote 6"

    query = {"$filter": f"internetMessageId eq '{full['internetMessageId']}'"}
    by_header = graph.ok("GET", "me/messages", params=query)
    assert [m["id"] for m in by_header["value"]] == [full["id"]]


def test_delta_reports_new_mail_and_mail_moved_away(sandbox: SandboxProcess, graph: Graph) -> None:
    graph.ok("POST", "me/mailFolders", json={"displayName": "Aspire"})
    folder_id = folder_named(graph, "Aspire")["id"]
    for n in range(5):
        put(sandbox, "Aspire", f"Mail {n}")
    headers = {"Prefer": "odata.maxpagesize=2"}
    items, delta_link = graph.pages(f"me/mailFolders/{folder_id}/messages/delta?$select=subject", headers=headers)
    assert sorted(m["subject"] for m in items) == [f"Mail {n}" for n in range(5)]
    assert delta_link

    moved = graph.ok("POST", f"me/messages/{items[0]['id']}/move", json={"destinationId": "archive"})
    assert moved["id"] != items[0]["id"]  # Exchange gives a moved message a new id
    assert graph.get(f"me/messages/{items[0]['id']}").status_code == 404
    put(sandbox, "Aspire", "Mail 5")

    changes, delta_link = graph.pages(delta_link, headers=headers)
    assert {"id": items[0]["id"], "@odata.type": "#microsoft.graph.message",
            "@removed": {"reason": "deleted"}} in changes
    assert [m["subject"] for m in changes if "@removed" not in m] == ["Mail 5"]

    quiet, _ = graph.pages(delta_link)
    assert quiet == []

    sandbox.control("POST", "/accounts/microsoft/ana@acme.test/expire-sync-state")
    expired = graph.get(delta_link)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "SyncStateNotFound"


def test_immutable_ids_survive_a_move(sandbox: SandboxProcess, graph: Graph) -> None:
    put(sandbox, "Inbox", "Keep my id")
    listed, delta_link = graph.pages("me/mailFolders/inbox/messages/delta", headers=IMMUTABLE)
    moved = graph.ok("POST", f"me/messages/{listed[0]['id']}/move", json={"destinationId": "archive"},
                     headers=IMMUTABLE)
    assert moved["id"] == listed[0]["id"]
    assert graph.ok("GET", f"me/messages/{moved['id']}", headers=IMMUTABLE)["parentFolderId"] == \
        graph.ok("GET", "me/mailFolders/archive")["id"]
    changes, _ = graph.pages(delta_link, headers=IMMUTABLE)
    assert [(c["id"], "@removed" in c) for c in changes] == [(moved["id"], True)]


def test_batch_of_twenty_moves_counts_each_step_against_the_mailbox_and_refuses_twenty_one(
        sandbox: SandboxProcess, graph: Graph) -> None:
    graph.ok("POST", "me/mailFolders", json={"displayName": "Aspire"})
    processed = graph.ok("POST", "me/mailFolders", json={"displayName": "Processed"})
    for n in range(21):
        put(sandbox, "Aspire", f"Batch {n}")
    ids = [m["id"] for m in graph.pages(f"me/mailFolders/{folder_named(graph, 'Aspire')['id']}/messages")[0]]

    steps = [{"id": str(n), "method": "POST", "url": f"/me/messages/{message_id}/move",
              "headers": {"Content-Type": "application/json"}, "body": {"destinationId": processed["id"]}}
             for n, message_id in enumerate(ids)]
    too_many = graph.post("$batch", json={"requests": steps})
    assert too_many.status_code == 400

    # Graph sends the twenty steps to the mailbox at once: four fit its concurrency limit, the
    # others are throttled one by one, with Retry-After, and nothing of theirs happens.
    result = graph.ok("POST", "$batch", json={"requests": steps[:20]})
    assert len(result["responses"]) == 20
    by_status: dict[int, list[dict[str, Any]]] = {}
    for answer in result["responses"]:
        by_status.setdefault(answer["status"], []).append(answer)
    assert sorted((status, len(answers)) for status, answers in by_status.items()) == [(201, 4), (429, 16)]
    assert all(r["body"]["parentFolderId"] == processed["id"] for r in by_status[201])
    assert all(r["headers"]["Retry-After"] == "1" and r["body"]["error"]["code"] == "ApplicationThrottled"
               for r in by_status[429])
    assert graph.ok("GET", f"me/mailFolders/{processed['id']}")["totalItemCount"] == 4

    # Retried after Retry-After in batches the limit allows, every one is moved once.
    throttled = [steps[int(answer["id"])] for answer in by_status[429]]
    time.sleep(1)
    for start in range(0, len(throttled), 4):
        again = graph.ok("POST", "$batch", json={"requests": throttled[start:start + 4]})
        assert {r["status"] for r in again["responses"]} == {201}
    assert graph.ok("GET", f"me/mailFolders/{processed['id']}")["totalItemCount"] == 20

    # Each step succeeds or fails on its own: the moved messages' old ids are gone now.
    unknown = {"id": "x", "method": "GET", "url": "/me/nonsense"}
    again = graph.ok("POST", "$batch", json={"requests": [steps[0], steps[20], unknown]})
    assert sorted(r["status"] for r in again["responses"]) == [201, 400, 404]
    assert again["responses"][2]["body"]["error"]["code"] == "BadRequest"


def test_send_mail_lands_in_sent_items_and_reaches_sandbox_recipients(sandbox: SandboxProcess, graph: Graph) -> None:
    bob = graph_for(sandbox, "bob@acme.test")
    attachment = bytes(range(256)) * 100
    response = graph.post("me/sendMail", json={"message": {
        "subject": "Proposal", "body": {"contentType": "HTML", "content": "<p>Hello <b>Bob</b></p>"},
        "toRecipients": [{"emailAddress": {"address": "bob@acme.test", "name": "Bob"}}],
        "ccRecipients": [{"emailAddress": {"address": "carol@example.com"}}],
        "internetMessageHeaders": [{"name": "X-Aspire-Activity", "value": "act-1"}],
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "proposal.pdf",
                         "contentType": "application/pdf", "contentBytes": base64.b64encode(attachment).decode()}],
    }})
    assert response.status_code == 202

    sent = graph.ok("GET", "me/mailFolders/sentitems/messages")["value"]
    assert [m["subject"] for m in sent] == ["Proposal"]
    assert sent[0]["hasAttachments"] is True and sent[0]["bodyPreview"] == "Hello Bob"
    assert sent[0]["from"]["emailAddress"]["address"] == "ana@acme.test"
    raw = email.message_from_bytes(graph.get(f"me/messages/{sent[0]['id']}/$value").content,
                                   policy=email.policy.default)
    assert raw["X-Aspire-Activity"] == "act-1"
    assert next(raw.iter_attachments()).get_content() == attachment
    assert [m["subject"] for m in bob.ok("GET", "me/mailFolders/inbox/messages")["value"]] == ["Proposal"]

    unsaved = graph.post("me/sendMail", json={"saveToSentItems": False, "message": {
        "subject": "No copy", "toRecipients": [{"emailAddress": {"address": "x@example.com"}}]}})
    assert unsaved.status_code == 202
    assert len(graph.ok("GET", "me/mailFolders/sentitems/messages")["value"]) == 1


def test_send_mail_as_mime(graph: Graph) -> None:
    raw = mime("Raw send", sender="ana@acme.test", to="x@example.com")
    response = graph.post("me/sendMail", data=base64.b64encode(raw.encode()), headers={"Content-Type": "text/plain"})
    assert response.status_code == 202
    assert [m["subject"] for m in graph.ok("GET", "me/mailFolders/sentitems/messages")["value"]] == ["Raw send"]
    bad = graph.post("me/sendMail", data=b"not base64!", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400


def test_draft_then_send(graph: Graph) -> None:
    draft = graph.post("me/messages", json={"subject": "Invoice", "body": {"contentType": "Text", "content": "Due"},
                                            "toRecipients": [{"emailAddress": {"address": "x@example.com"}}]})
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    assert graph.ok("GET", "me/mailFolders/drafts")["totalItemCount"] == 1
    assert graph.post(f"me/messages/{draft.json()['id']}/send").status_code == 202
    assert graph.ok("GET", "me/mailFolders/drafts")["totalItemCount"] == 0
    sent = graph.ok("GET", "me/mailFolders/sentitems/messages")["value"]
    assert [(m["subject"], m["isDraft"]) for m in sent] == [("Invoice", False)]


def test_delete_message(sandbox: SandboxProcess, graph: Graph) -> None:
    message_id = put(sandbox, "Inbox", "Spam")["id"]
    assert graph.request("DELETE", f"me/messages/{message_id}").status_code == 204
    assert graph.get(f"me/messages/{message_id}").status_code == 404
    mailbox = sandbox.control("GET", "/accounts/microsoft/ana@acme.test/mailbox")
    assert all(not f["messages"] for f in mailbox["folders"])


def test_a_25_mb_attachment_is_served_but_cannot_be_sent_in_one_request(sandbox: SandboxProcess,
                                                                        graph: Graph) -> None:
    attachment = b"%PDF" + bytes(25 * 1024 * 1024)
    raw = mime("Big plans", attachment=attachment)
    put_result = sandbox.control("POST", "/accounts/microsoft/ana@acme.test/messages",
                                 json={"folder": "Inbox", "raw": raw})
    message = graph.ok("GET", f"me/messages/{put_result['id']}")
    assert message["hasAttachments"] is True
    content = graph.get(f"me/messages/{put_result['id']}/$value").content
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert next(parsed.iter_attachments()).get_content() == attachment

    # Graph takes request bodies of 4 MB at most: such mail is sent as a draft with an upload
    # session (tests/sandbox/test_microsoft_large_mail.py).
    sent = graph.post("me/sendMail", json={"message": {
        "subject": "Plans attached", "toRecipients": [{"emailAddress": {"address": "client@example.com"}}],
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "plans.pdf",
                         "contentType": "application/pdf", "contentBytes": base64.b64encode(attachment).decode()}]}})
    assert sent.status_code == 413
    assert sent.json()["error"]["message"] == "The maximum request length supported is 4MB."
    assert graph.ok("GET", "me/mailFolders/sentitems/messages")["value"] == []


def test_a_large_folder_lists_in_pages(sandbox: SandboxProcess, graph: Graph) -> None:
    graph.ok("POST", "me/mailFolders", json={"displayName": "Big"})
    for n in range(300):
        put(sandbox, "Big", f"Bulk {n}")
    folder_id = folder_named(graph, "Big")["id"]
    items, delta_link = graph.pages(f"me/mailFolders/{folder_id}/messages/delta?$select=subject",
                                    headers={"Prefer": "odata.maxpagesize=100"})
    assert len(items) == 300 and len({m["id"] for m in items}) == 300 and delta_link


def test_a_delta_of_the_inbox_carries_what_places_a_message_in_a_conversation(sandbox: SandboxProcess,
                                                                              graph: Graph) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/message (conversationId;
    # internetMessageHeaders only when $select names them)
    first = put(sandbox, "Inbox", "Spring cleanup quote")
    reply = (
        "From: Dana <dana@example.com>\r\nTo: ana@acme.test\r\nSubject: Re: Spring cleanup quote\r\n"
        f"Message-ID: <reply-1@example.com>\r\nIn-Reply-To: {first['internet_message_id']}\r\n"
        f"References: {first['internet_message_id']}\r\n\r\nTuesday works.\r\n"
    )
    sandbox.control("POST", "/accounts/microsoft/ana@acme.test/messages", json={"folder": "Inbox", "raw": reply})
    items, _ = graph.pages("me/mailFolders/inbox/messages/delta"
                           "?$select=internetMessageId,conversationId,internetMessageHeaders")
    by_subject = {m["internetMessageId"]: m for m in items}
    replied = by_subject["<reply-1@example.com>"]
    assert replied["conversationId"] == by_subject[first["internet_message_id"]]["conversationId"]
    headers = {h["name"]: h["value"] for h in replied["internetMessageHeaders"]}
    assert headers["In-Reply-To"] == first["internet_message_id"]
    plain, _ = graph.pages("me/mailFolders/inbox/messages/delta?$select=subject")
    assert all("internetMessageHeaders" not in m for m in plain)
    refused = graph.get("me/mailFolders/inbox/messages/delta?$select=noSuchProperty")
    assert refused.status_code == 400
