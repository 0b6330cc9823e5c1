"""Bad mail and bad moments during a capture: what the user sees, and that nothing is lost."""

from __future__ import annotations

import html
import os
import threading
import time
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
import requests
from django.db import connection as db_connection

from accounts.grants import fresh_grant
from accounts.models import MailboxConnection, User
from activities.models import Activity, EmailAttachment
from crm.models import Contact, ContactEmail
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connect, connected_mailbox, drop, mime

EMAIL = "bob@greenleaf.example"


@pytest.fixture
def mailbox(providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")
    return connection


def folder_counts(sandbox: SandboxProcess) -> dict[str, int]:
    mailbox = sandbox.control("GET", f"/accounts/microsoft/{EMAIL}/mailbox")
    return {f["name"]: len(f["messages"]) for f in mailbox["folders"]}


def email_page(user: User, activity: Activity) -> str:
    return html.unescape(client_for(user).get(f"/activities/{activity.pk}/").content.decode())


def test_malformed_mime_arrives_with_a_note(mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess,
                                           bob: User) -> None:
    raw = (
        "From: Dana <dana@example.com>\r\nTo: bob@greenleaf.example\r\nSubject: Broken parts\r\n"
        "Message-ID: <broken@example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
        "--never-closed\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: bogus-encoding\r\n\r\n"
        "The mulch can wait until Friday.\r\n"
    )
    drop(providers_on_sandbox, "microsoft", EMAIL, raw)
    run = run_capture(connection_id=mailbox.pk, owner="test")
    assert run is not None and run.items_imported == 1
    activity = Activity.objects.get(subject="Broken parts")
    assert "The mulch can wait until Friday." in activity.email.text_body
    page = email_page(bob, activity)
    assert "The mulch can wait until Friday." in page
    assert folder_counts(providers_on_sandbox)["Processed"] == 1


def test_an_unknown_charset_is_read_as_well_as_it_can_be(mailbox: MailboxConnection,
                                                          providers_on_sandbox: SandboxProcess, bob: User) -> None:
    raw = (
        b"From: dana@example.com\r\nTo: bob@greenleaf.example\r\nSubject: Charset trouble\r\n"
        b"Message-ID: <charset@example.com>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-made-up-charset\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ) + "Caf\u00e9 on Friday at 10".encode()
    drop(providers_on_sandbox, "microsoft", EMAIL, raw.decode("utf-8"))
    run_capture(connection_id=mailbox.pk, owner="test")
    activity = Activity.objects.get(subject="Charset trouble")
    assert "Friday at 10" in activity.email.text_body
    assert activity.email.problems  # the user is told the text may show odd characters
    assert activity.email.problems.splitlines()[0] in email_page(bob, activity)


def test_mail_without_date_or_message_id_is_captured(mailbox: MailboxConnection,
                                                      providers_on_sandbox: SandboxProcess) -> None:
    raw = "From: dana@example.com\r\nTo: bob@greenleaf.example\r\nSubject: Bare\r\n\r\nNo date, no id.\r\n"
    drop(providers_on_sandbox, "microsoft", EMAIL, raw)
    before = time.time()
    run_capture(connection_id=mailbox.pk, owner="test")
    activity = Activity.objects.get(subject="Bare")
    assert activity.occurred_at.timestamp() >= before - 1  # when it was captured
    assert activity.email.dedupe_key.startswith("digest:")


@pytest.mark.slow
def test_a_25_mb_attachment_is_kept_intact(mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess,
                                           bob: User) -> None:
    payload = os.urandom(25 * 1024 * 1024)
    drop(providers_on_sandbox, "microsoft", EMAIL, mime("Site photos", attachment=payload))
    run = run_capture(connection_id=mailbox.pk, owner="test")
    assert run is not None and run.items_imported == 1
    attachment = EmailAttachment.objects.get(email__activity__subject="Site photos")
    assert attachment.size == len(payload) and not attachment.too_large
    response = client_for(bob).get(f"/activities/{attachment.email_id}/attachments/{attachment.pk}/")
    assert b"".join(response.streaming_content) == payload  # type: ignore[attr-defined]
    assert "Invoice 88231.pdf" in response["Content-Disposition"]


def test_a_thousand_recipients(mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess,
                               greenleaf: Any) -> None:
    recipients = [f"neighbor{n}@example.net" for n in range(1000)]
    for n in (10, 500, 999):
        contact = Contact.objects.create(company=greenleaf, first_name=f"Neighbor {n}")
        ContactEmail.objects.create(company=greenleaf, contact=contact, address=recipients[n])
    message = MimeMessage()
    message["From"] = "hoa-board@example.net"
    message["To"] = ", ".join(recipients[:500])
    message["Cc"] = ", ".join(recipients[500:])
    message["Subject"] = "Community cleanup day"
    message.set_content("See you Saturday.")
    drop(providers_on_sandbox, "microsoft", EMAIL, message.as_string())
    run_capture(connection_id=mailbox.pk, owner="test")
    activity = Activity.objects.get(subject="Community cleanup day")
    assert activity.contacts.count() == 3
    assert len(activity.email.to) + len(activity.email.cc) == 1000


@pytest.mark.django_db(transaction=True)
def test_a_message_deleted_during_the_run_is_skipped(mailbox: MailboxConnection,
                                                     providers_on_sandbox: SandboxProcess) -> None:
    ids = [drop(providers_on_sandbox, "microsoft", EMAIL, mime(f"Quote {n}")) for n in range(3)]
    # The downloads are slow; meanwhile the user deletes one of the messages in Outlook.
    providers_on_sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 1.5, "path": "/\\$value",
                                                          "count": 3})
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: (outcome.append(run_capture(connection_id=mailbox.pk, owner="t")),
                                              db_connection.close()))
    runner.start()
    time.sleep(0.5)
    delete_message(providers_on_sandbox, mailbox, ids[1])
    runner.join(timeout=60)
    run = outcome[0]
    assert run is not None and run.outcome == "succeeded"
    assert sorted(Activity.objects.filter(subject__startswith="Quote").values_list("subject", flat=True)) == [
        "Quote 0", "Quote 2"]
    assert folder_counts(providers_on_sandbox)["Aspire"] == 0


def delete_message(sandbox: SandboxProcess, connection: MailboxConnection, message_id: str) -> None:
    """As the user would, in Outlook."""
    token = fresh_grant(connection_id=connection.pk).access_token
    session = requests.Session()
    session.trust_env = False
    response = session.delete(f"{sandbox.base_url}/v1.0/me/messages/{message_id}", verify=str(sandbox.ca_path),
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 204, response.text


def test_access_revoked_mid_run_loses_nothing(mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess,
                                              bob: User) -> None:
    for n in range(2):
        drop(providers_on_sandbox, "microsoft", EMAIL, mime(f"Renewal {n}"))
    # The access token is refused mid-run, and so is the refresh that follows: access has ended.
    providers_on_sandbox.control("POST", "/faults", json=[
        {"kind": "status", "status": 401, "path": "/\\$value", "count": 1},
        {"kind": "invalid_grant", "account": EMAIL},
    ])
    with pytest.raises(AuthRevoked) as revoked:
        run_capture(connection_id=mailbox.pk, owner="test")
    assert "sign in again" in revoked.value.user_message
    mailbox.refresh_from_db()
    assert mailbox.state == "needs_signin"
    assert folder_counts(providers_on_sandbox)["Aspire"] == 2  # still there, nothing lost
    page = html.unescape(client_for(bob).get("/settings/").content.decode())
    assert "Needs sign-in" in page and "sign in again" in page

    # Reconnecting picks up where it left off.
    assert "Connected as" in connect(client_for(bob), providers_on_sandbox, bob, "microsoft", EMAIL,
                                     sync_aspire_folder=True)
    run_capture(connection_id=mailbox.pk, owner="test")
    assert Activity.objects.filter(subject__startswith="Renewal").count() == 2
    assert folder_counts(providers_on_sandbox)["Aspire"] == 0
