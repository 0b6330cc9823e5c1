"""Large mail from Aspire through the send queue, against the sandbox with the providers' size
limits on: 24 MB in three attachments reaches the recipient once, byte for byte, from Microsoft
365 (a draft, upload sessions, send: Graph takes 4 MB a request) and from Gmail (a media upload);
a send that fails part-way leaves no second copy and no draft counted as sent."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
from email.message import EmailMessage as ParsedMessage
from typing import Any

import pytest
from django.utils import timezone

from accounts.grants import fresh_grant
from accounts.models import User
from accounts.provider_registry import get_provider
from activities.models import Activity
from crm.models import Contact
from mailsync.models import OutboundEmail, SendQueue
from mailsync.outbox import queue_email
from mailsync.outgoing import AttachmentFile
from sandbox.runner import SandboxProcess
from tests.conftest import client_for, mailbox_account
from tests.mailsync.test_sending import connect_bob, run_sender, sent_copies

PROVIDERS = ["microsoft", "google"]

pytestmark = pytest.mark.slow  # 24 MB round trips
MB = 1024 * 1024
INBOX = {"microsoft": "Inbox", "google": "INBOX"}


def requests_log(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = sandbox.control("GET", "/requests")["requests"]
    return entries


def inbox_copies(sandbox: SandboxProcess, provider: str, address: str, message_id: str) -> list[dict[str, Any]]:
    box = sandbox.control("GET", f"/accounts/{provider}/{address}/mailbox")
    [folder] = [f for f in box["folders"] if INBOX[provider] in (f["name"], f["id"])]
    return [m for m in folder["messages"] if m["internet_message_id"] == message_id]


def drafts(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    box = sandbox.control("GET", "/accounts/microsoft/bob@greenleaf.example/mailbox")
    return [m for f in box["folders"] if f["name"] == "Drafts" for m in f["messages"]]


def attachments_of(provider: str, connection: Any, stored_id: str) -> tuple[ParsedMessage, dict[str, Any]]:
    raw = get_provider(provider).fetch_mime(fresh_grant(connection_id=connection.pk), stored_id)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    return parsed, {part.get_filename(): part.get_payload(decode=True) for part in parsed.iter_attachments()}


def queue_large(bob: User, files: list[AttachmentFile]) -> OutboundEmail:
    return queue_email(author=bob, to="dana@example.com", subject="Site survey, drawings and photos",
                       body="Dana,\n\nEverything from the site visit is attached.\n\nBob", attachments=files)


@pytest.fixture
def survey_files() -> list[AttachmentFile]:
    """24 MB in three files that do not compress or repeat, so every byte counts."""
    return [AttachmentFile("Site survey.pdf", "application/pdf", b"%PDF-1.7\n" + os.urandom(8 * MB)),
            AttachmentFile("Drawings.zip", "application/zip", os.urandom(9 * MB)),
            AttachmentFile("Photos März.jpg", "image/jpeg", b"\xff\xd8\xff" + os.urandom(7 * MB))]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_24_mb_message_with_three_attachments_arrives_once_byte_for_byte(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact,
    survey_files: list[AttachmentFile],
) -> None:
    sandbox = providers_on_sandbox
    connection = connect_bob(client_for(bob), sandbox, bob, provider)
    mailbox_account(sandbox, provider, "dana@example.com", display_name="Dana Whitfield")  # the recipient
    assert sum(len(f.content) for f in survey_files) > 24 * 1000 * 1000
    outbound = queue_large(bob, survey_files)

    assert run_sender(connection) == "sent 1"

    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    [copy] = sent_copies(sandbox, provider, outbound.message_id)
    [delivered] = inbox_copies(sandbox, provider, "dana@example.com", outbound.message_id)
    assert delivered["subject"] == "Site survey, drawings and photos"
    stored_id = copy["immutable_id"] if provider == "microsoft" else copy["id"]
    parsed, files = attachments_of(provider, connection, stored_id)
    assert parsed["Message-ID"] == outbound.message_id
    assert str(parsed["From"]) == "Bob Staff <bob@greenleaf.example>"
    assert files == {f.filename: f.content for f in survey_files}
    assert Activity.objects.filter(origin="sent", contacts=contact).count() == 1

    log = requests_log(sandbox)
    if provider == "microsoft":
        # Too large for sendMail: a draft from the MIME, an upload session per file, 3 MB ranges, send.
        assert not [r for r in log if r["path"].endswith("/sendMail")]
        assert all(r["status"] != 413 for r in log)
        assert len([r for r in log if r["path"].endswith("/createUploadSession")]) == 3
        uploads = [r for r in log if r["operation"] == "attachments.upload"]
        assert [r["status"] for r in uploads].count(201) == 3 and len(uploads) == 3 + 3 + 3
        assert [r["status"] for r in log if re.search(r"/messages/[^/]+/send$", r["path"])] == [202]
        assert drafts(sandbox) == []
    else:
        [send] = [r for r in log if r["operation"] == "gmail.messages.send"]
        assert send["path"].startswith("/upload/") and send["status"] == 200


def test_a_message_too_large_for_sendmail_but_not_for_an_upload_session_keeps_small_files_in_the_draft(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    """One 4 MB file goes through an upload session; the two small ones stay in the draft's MIME."""
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    files = [AttachmentFile("Estimate.pdf", "application/pdf", os.urandom(4 * MB)),
             AttachmentFile("Map.png", "image/png", os.urandom(300 * 1024)),
             AttachmentFile("Notes.txt", "text/plain", b"Gate code 4417\r\n")]
    outbound = queue_large(bob, files)
    assert run_sender(connection) == "sent 1"
    [copy] = sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)
    _, received = attachments_of("microsoft", connection, copy["immutable_id"])
    assert received == {f.filename: f.content for f in files}
    log = requests_log(providers_on_sandbox)
    assert len([r for r in log if r["path"].endswith("/createUploadSession")]) == 1
    assert not [r for r in log if r["path"].endswith("/attachments")]


@pytest.mark.parametrize("went_out", [True, False], ids=["went-out", "never-left"])
def test_a_large_send_whose_answer_is_lost_is_looked_for_and_a_left_over_draft_is_not_taken_for_sent(
    went_out: bool, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
    survey_files: list[AttachmentFile],
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    sandbox = providers_on_sandbox
    connection = connect_bob(client_for(bob), sandbox, bob, "microsoft")
    outbound = queue_large(bob, survey_files[:1])
    # The draft is made and its attachment uploaded; the connection drops on the request that
    # sends it, after Graph took it (went-out) or before (never-left: the draft stays a draft).
    sandbox.control("POST", "/faults", json={"kind": "drop", "after": went_out, "method": "POST",
                                            "path": r"/me/messages/[^/]+/send$"})
    run_sender(connection)

    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    assert len(sent_copies(sandbox, "microsoft", outbound.message_id)) == 1
    assert drafts(sandbox) == []  # the left-over draft was deleted before the message went again
    sends = [r for r in requests_log(sandbox) if re.search(r"/messages/[^/]+/send$", r["path"])]
    assert [str(r["status"]) for r in sends] == (["dropped after 202"] if went_out else ["dropped", "202"])
    assert len([r for r in requests_log(sandbox) if r["path"] == "/v1.0/me/messages" and r["method"] == "POST"]) \
        == (1 if went_out else 2)
    assert Activity.objects.filter(origin="sent").count() == 1


def test_an_upload_that_fails_deletes_its_draft_and_the_retry_sends_once(
    providers_on_sandbox: SandboxProcess, bob: User, survey_files: list[AttachmentFile],
) -> None:
    sandbox = providers_on_sandbox
    connection = connect_bob(client_for(bob), sandbox, bob, "microsoft")
    outbound = queue_large(bob, survey_files[:2])
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 500, "path": "/AttachmentSessions"})
    assert run_sender(connection) == "sent 0"
    outbound.refresh_from_db()
    assert outbound.state == "queued" and drafts(sandbox) == []
    assert not sent_copies(sandbox, "microsoft", outbound.message_id)

    # What the backoff's minute does: the message is due again.
    OutboundEmail.objects.filter(pk=outbound.pk).update(not_before=timezone.now() - dt.timedelta(seconds=1))
    SendQueue.objects.filter(pk=connection.pk).update(next_send_at=timezone.now())
    assert run_sender(connection) == "sent 1"
    outbound.refresh_from_db()
    assert outbound.state == "sent"
    [copy] = sent_copies(sandbox, "microsoft", outbound.message_id)
    _, received = attachments_of("microsoft", connection, copy["immutable_id"])
    assert received == {f.filename: f.content for f in survey_files[:2]}


def test_gmail_mail_over_1_mb_goes_as_a_media_upload(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    """A 2 MB message in a JSON body would be 2.7 MB: larger than Gmail has been seen to take."""
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "google")
    photo = AttachmentFile("Photo.jpg", "image/jpeg", os.urandom(2 * MB))
    outbound = queue_large(bob, [photo])
    assert run_sender(connection) == "sent 1"
    [copy] = sent_copies(providers_on_sandbox, "google", outbound.message_id)
    assert attachments_of("google", connection, copy["id"])[1] == {"Photo.jpg": photo.content}
    [send] = [r for r in requests_log(providers_on_sandbox) if r["operation"] == "gmail.messages.send"]
    assert send["path"] == "/upload/gmail/v1/users/me/messages/send" and "uploadType=media" in send["query"]
