"""Sending mail from Aspire, against the provider sandbox through the real adapters: compose on a
contact or record page, queue, send through the author's own mailbox, the copy in Sent, the
Activity; refusals; no second copy after an ambiguous failure; throttling; a revoked grant;
retrying; who may see what."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import html
import itertools
import re
import time
from email.message import EmailMessage as ParsedMessage
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts import grants as mailbox_services
from accounts.grants import fresh_grant
from accounts.models import MailboxConnection, User
from accounts.provider_registry import get_provider
from activities.models import Activity
from crm.models import Contact, ContactEmail, Opportunity
from mailsync.capture import run_capture
from mailsync.models import EmailSource, OutboundEmail, SendQueue
from mailsync.outbox import queue_email
from mailsync.send_tasks import send_queue
from sandbox.runner import SandboxProcess
from sandbox.signin import ProviderSignIn
from tests.accounts.test_connect_mailbox import connect
from tests.conftest import REDIRECT_URI, client_for, mailbox_account

PROVIDERS = ["microsoft", "google"]
SENT_FOLDER = {"microsoft": "Sent Items", "google": "SENT"}
SEND_PATH = {"microsoft": "/me/sendMail$", "google": "/messages/send$"}
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 10


def connect_bob(client: Client, sandbox: SandboxProcess, bob: User, provider: str) -> MailboxConnection:
    mailbox_account(sandbox, provider, "bob@greenleaf.example", display_name="Bob Staff")
    connect(client, sandbox, bob, provider, "bob@greenleaf.example")
    return MailboxConnection.objects.get(user=bob)


def sent_copies(sandbox: SandboxProcess, provider: str, message_id: str | None = None) -> list[dict[str, Any]]:
    box = sandbox.control("GET", f"/accounts/{provider}/bob@greenleaf.example/mailbox")
    [folder] = [f for f in box["folders"] if f["name"] == SENT_FOLDER[provider] or f["id"] == SENT_FOLDER[provider]]
    return [m for m in folder["messages"] if message_id is None or m["internet_message_id"] == message_id]


def send_requests(sandbox: SandboxProcess, provider: str,
                  account: str = "bob@greenleaf.example") -> list[dict[str, Any]]:
    """The mailbox's send requests in the sandbox's log, which holds every account's (a refused
    token names no account)."""
    return [r for r in sandbox.control("GET", "/requests")["requests"]
            if r["method"] == "POST" and re.search(SEND_PATH[provider], r["path"]) and r["account"] in (account, None)]


def run_sender(connection: MailboxConnection) -> str:
    """The Celery task, run in this process as a worker would run it."""
    return str(send_queue(str(connection.pk)))


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def queue(bob: User, subject: str = "Your invoice", **fields: Any) -> OutboundEmail:
    return queue_email(author=bob, to=fields.pop("to", "dana@example.com"), subject=subject,
                       body=fields.pop("body", "Please find your invoice attached."), **fields)


# -- the whole way: compose on a contact page, sent, in Sent, an Activity ------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_compose_from_a_contact_page_sends_through_the_authors_mailbox(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, opportunity: Opportunity,
) -> None:
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, provider)
    contact_page = page_text(client.get(f"/contacts/{contact.pk}/"))
    assert f'href="/mail/compose/contact/{contact.pk}/"' in contact_page

    form = page_text(client.get(f"/mail/compose/contact/{contact.pk}/"))
    assert 'value="dana@example.com"' in form  # the contact's address, filled in
    assert "Spring mulch" in form  # a Regarding to choose
    assert "Up to 25 MB in all" in form
    response = client.post(f"/mail/compose/contact/{contact.pk}/", {
        "to": "dana@example.com", "cc": "", "subject": "Rechnung für März: spring mulch",
        "body": "Hi Dana,\n\nYour proposal for the spring mulch is attached. Grüße, Bob",
        "regarding": f"opportunity:{opportunity.pk}",
        "attachments": [SimpleUploadedFile("Proposal März.pdf", PDF, content_type="application/pdf"),
                        SimpleUploadedFile("site.png", PNG, content_type="application/octet-stream")],
    }, follow=True)
    outbound = OutboundEmail.objects.get()
    assert response.redirect_chain[-1][0] == f"/mail/outbox/{outbound.pk}/"
    queued_page = page_text(response)
    assert "Queued" in queued_page and "Rechnung für März" in queued_page
    assert outbound.state == "queued" and outbound.message_id.endswith("@greenleaf.example>")

    assert run_sender(connection) == "sent 1"

    outbound.refresh_from_db()
    assert outbound.state == "sent" and outbound.sent_at is not None
    [copy] = sent_copies(providers_on_sandbox, provider, outbound.message_id)
    assert copy["subject"] == "Rechnung für März: spring mulch"
    # An email Activity on the contact, marked as sent from Aspire, with the chosen Regarding.
    activity = Activity.objects.get(contacts=contact)
    assert activity == outbound.activity
    assert (activity.kind, activity.origin, activity.owner) == ("email", "sent", bob)
    assert activity.regarding == opportunity
    assert activity.email.message_id == outbound.message_id
    # Its files stay with the outbound message; the email says it has attachments, and Find email's
    # "Has an attachment" finds it.
    assert activity.email.has_attachment
    found = page_text(client.get("/activities/search/", {"q": "mulch", "attachment": "on"}))
    assert "Rechnung für März" in found
    assert "Sent from Aspire" in page_text(client.get(f"/contacts/{contact.pk}/"))
    assert "Rechnung für März" in page_text(client.get(f"/opportunities/{opportunity.pk}/"))
    detail = page_text(client.get(f"/mail/outbox/{outbound.pk}/"))
    assert 'data-state="sent"' in detail and "Sent" in detail

    # The message as the mailbox holds it: our headers, and the attachments byte for byte.
    grant = fresh_grant(connection_id=connection.pk)
    stored_id = copy["immutable_id"] if provider == "microsoft" else copy["id"]
    parsed = email.message_from_bytes(get_provider(provider).fetch_mime(grant, stored_id), policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    assert parsed["Message-ID"] == outbound.message_id
    assert str(parsed["From"]) == "Bob Staff <bob@greenleaf.example>"
    assert str(parsed["Subject"]) == "Rechnung für März: spring mulch"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "Grüße, Bob" in body.get_content()
    files = {part.get_filename(): (part.get_content_type(), part.get_content()) for part in parsed.iter_attachments()}
    assert files == {"Proposal März.pdf": ("application/pdf", PDF), "site.png": ("image/png", PNG)}


def test_sent_mail_captured_later_from_the_mailbox_stays_one_activity(
    providers_on_sandbox: SandboxProcess, bob: User, contact: Contact,
) -> None:
    mailbox_account(providers_on_sandbox, "microsoft", "bob@greenleaf.example", display_name="Bob Staff")
    connect(client_for(bob), providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example", sync_aspire_folder=True)
    connection = MailboxConnection.objects.get(user=bob)
    outbound = queue(bob)
    run_sender(connection)
    run_capture(connection_id=connection.pk, owner="test")  # makes the Aspire folder
    # Bob drags the sent copy into Aspire.
    [copy] = sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)
    raw = get_provider("microsoft").fetch_mime(fresh_grant(connection_id=connection.pk), copy["immutable_id"])
    providers_on_sandbox.control("POST", "/accounts/microsoft/bob@greenleaf.example/messages",
                                 json={"folder": "Aspire", "raw_base64": base64.b64encode(raw).decode()})
    run_capture(connection_id=connection.pk, owner="test")
    outbound.refresh_from_db()
    assert list(Activity.objects.filter(contacts=contact)) == [outbound.activity]
    assert outbound.activity is not None and outbound.activity.origin == "sent"
    assert EmailSource.objects.filter(activity=outbound.activity, connection=connection).exists()  # captured


@pytest.mark.parametrize("provider", PROVIDERS)
def test_compose_regarding_a_record_matches_every_recipient_contact(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, prop: Any,
    work_ticket: Any, carol: User,
) -> None:
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, provider)
    second = Contact.objects.create(company=bob.company, first_name="Sam", last_name="Whitfield")
    ContactEmail.objects.create(company=bob.company, contact=second, address="sam@example.com")
    # Carol's company has a contact with the same address: it is not Greenleaf's to record on.
    outsider = Contact.objects.create(company=carol.company, first_name="Dana", last_name="Elsewhere")
    ContactEmail.objects.create(company=carol.company, contact=outsider, address="dana@example.com")

    form = page_text(client.get(f"/mail/compose/work-ticket/{work_ticket.pk}/"))
    assert 'value="dana@example.com"' in form
    client.post(f"/mail/compose/work-ticket/{work_ticket.pk}/", {
        "to": "Dana <DANA@example.com>", "cc": "sam@example.com; someone.new@example.net",
        "subject": "Mowing this week", "body": "We'll be there Thursday.",
        "regarding": f"work-ticket:{work_ticket.pk}",
    })
    run_sender(connection)
    outbound = OutboundEmail.objects.get()
    assert outbound.state == "sent", outbound.last_error
    assert (outbound.to, outbound.cc) == (["dana@example.com"], ["sam@example.com", "someone.new@example.net"])
    assert set(outbound.activity.contacts.all()) == {contact, second}
    assert outbound.activity.regarding == work_ticket
    assert not outsider.activities.exists()


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["to", "cc", "subject"])
def test_header_injection_is_refused(field: str, providers_on_sandbox: SandboxProcess, bob: User,
                                     contact: Contact) -> None:
    client = client_for(bob)
    connect_bob(client, providers_on_sandbox, bob, "microsoft")
    data = {"to": "dana@example.com", "cc": "", "subject": "Invoice", "body": "Hello", "regarding": ""}
    data[field] = "victim@example.com\r\nBcc: evil@example.com"
    response = client.post(f"/mail/compose/contact/{contact.pk}/", data)
    assert response.status_code == 200
    assert "Line breaks aren't allowed in" in page_text(response)
    assert not OutboundEmail.objects.exists()
    # The service refuses it too, whoever calls it.
    with pytest.raises(Exception, match="Line breaks"):
        queue_email(author=bob, **{"to": "dana@example.com", "subject": "Invoice", "body": "Hello",
                                   **{field: data[field]}})
    assert not OutboundEmail.objects.exists()
    assert not send_requests(providers_on_sandbox, "microsoft")


@pytest.mark.parametrize("address", ["dana@", "dana example.com", "dana@example..com", "<dana@example.com",
                                     "dana@example.com, @example.com"])
def test_an_invalid_address_is_refused_with_a_clear_error(address: str, providers_on_sandbox: SandboxProcess,
                                                          bob: User, contact: Contact) -> None:
    client = client_for(bob)
    connect_bob(client, providers_on_sandbox, bob, "google")
    response = client.post(f"/mail/compose/contact/{contact.pk}/",
                           {"to": address, "subject": "Invoice", "body": "Hello", "regarding": ""})
    assert "is not a valid email address." in page_text(response)
    assert not OutboundEmail.objects.exists()


def test_attachments_over_the_limit_are_refused(providers_on_sandbox: SandboxProcess, bob: User, contact: Contact,
                                                settings: Any) -> None:
    client = client_for(bob)
    connect_bob(client, providers_on_sandbox, bob, "microsoft")
    settings.MAIL_SEND_MAX_ATTACHMENT_BYTES = 1024 * 1024
    response = client.post(f"/mail/compose/contact/{contact.pk}/", {
        "to": "dana@example.com", "subject": "Photos", "body": "Hello", "regarding": "",
        "attachments": [SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 1))],
    })
    assert "Up to 1 MB in all: mail providers refuse larger messages." in page_text(response)
    assert not OutboundEmail.objects.exists()


def test_without_a_mailbox_nothing_is_queued(bob: User, contact: Contact) -> None:
    client = client_for(bob)
    page = page_text(client.get(f"/mail/compose/contact/{contact.pk}/"))
    assert "Connect your mailbox in Settings to send mail from Aspire." in page
    response = client.post(f"/mail/compose/contact/{contact.pk}/",
                           {"to": "dana@example.com", "subject": "Hi", "body": "Hello", "regarding": ""})
    assert "Connect your mailbox in Settings" in page_text(response)
    assert not OutboundEmail.objects.exists()


# -- never a second copy -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_lost_after_the_send_went_out_is_found_in_sent_and_not_resent(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    outbound = queue(bob)
    # The provider takes the message, then the connection drops before its answer arrives.
    providers_on_sandbox.control("POST", "/faults", json={"kind": "drop", "after": True, "path": SEND_PATH[provider]})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1
    [attempt] = send_requests(providers_on_sandbox, provider)  # the Sent check found it: no second send
    assert str(attempt["status"]).startswith("dropped after")
    assert Activity.objects.filter(origin="sent").count() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_connection_dropped_before_the_provider_took_it_is_sent_once_after_the_check(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "drop", "path": SEND_PATH[provider]})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    assert outbound.attempts == 2
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1
    assert [str(r["status"]) for r in send_requests(providers_on_sandbox, provider)] in (
        ["dropped", "202"], ["dropped", "200"])


def test_an_unknown_outcome_waits_and_says_so_before_checking(providers_on_sandbox: SandboxProcess, bob: User,
                                                              settings: Any) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 60
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "drop", "after": True, "path": "sendMail"})
    run_sender(connection)
    outbound.refresh_from_db()
    assert (outbound.state, outbound.verify_before_send) == ("queued", True)
    assert "check your Sent folder before trying again" in page_text(client.get("/mail/outbox/"))
    assert len(send_requests(providers_on_sandbox, "microsoft")) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_throttled_send_waits_for_retry_after_and_sends_once(provider: str, providers_on_sandbox: SandboxProcess,
                                                             bob: User) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 2,
                                                          "path": SEND_PATH[provider]})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent"
    first, second = send_requests(providers_on_sandbox, provider)
    assert first["status"] == 429 and second["status"] in (200, 202)
    assert second["ts"] - first["ts"] >= 2.0  # Retry-After honoured
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1


@pytest.mark.timeout(60)
def test_a_long_retry_after_pauses_the_whole_mailbox_without_holding_a_worker(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, "microsoft")
    first = queue(bob, "March statement")
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 120,
                                                          "path": "sendMail"})
    # Handed over to a later drain instead of sleeping two minutes (the test's timeout would stop it).
    assert run_sender(connection) == "sent 0"
    second = queue(bob, "April statement")
    assert run_sender(connection) == "sent 0"  # the mailbox as a whole waits
    assert len(send_requests(providers_on_sandbox, "microsoft")) == 1
    first.refresh_from_db()
    assert first.state == "queued" and first.not_before >= timezone.now() + dt.timedelta(seconds=100)
    assert SendQueue.objects.get(pk=connection.pk).next_send_at >= timezone.now() + dt.timedelta(seconds=100)
    assert "asked Aspire to slow down" in page_text(client.get("/mail/outbox/"))
    second.refresh_from_db()
    assert second.state == "queued"


# -- a revoked grant, failures and Retry ----------------------------------------------------------


def test_a_refused_access_token_is_renewed_and_the_message_sent_once(providers_on_sandbox: SandboxProcess,
                                                                     bob: User) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    # The user's sessions were ended at Microsoft: the stored access token now gets 401.
    providers_on_sandbox.control("POST", "/microsoft/bob@greenleaf.example/expire-access-tokens")
    assert run_sender(connection) == "sent 1"
    assert [r["status"] for r in send_requests(providers_on_sandbox, "microsoft")] == [401, 202]
    assert len(sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)) == 1
    connection.refresh_from_db()
    assert connection.state == "connected"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mail_waits_for_a_reconnect_after_the_grant_is_revoked(provider: str, providers_on_sandbox: SandboxProcess,
                                                               bob: User, monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, provider)
    first, second = queue(bob, "March invoice"), queue(bob, "April invoice")
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})
    with monkeypatch.context() as patch:
        patch.setattr(mailbox_services, "REFRESH_LEEWAY_SECONDS", 4 * 3600)  # the token is due a refresh
        run_sender(connection)
    connection.refresh_from_db()
    assert connection.state == "needs_signin"
    assert set(OutboundEmail.objects.values_list("state", flat=True)) == {"queued"}
    outbox = page_text(client.get("/mail/outbox/"))
    assert outbox.count("will be sent after you reconnect your mailbox") == 2
    assert not send_requests(providers_on_sandbox, provider)

    # Mail written meanwhile waits too, and says so.
    third = queue(bob, "May invoice")
    assert "will be sent after you reconnect your mailbox" in third.last_error

    response = client.post("/settings/mailbox/reconnect/")
    callback = ProviderSignIn(providers_on_sandbox, response["Location"], REDIRECT_URI).sign_in(
        "bob@greenleaf.example")
    assert callback is not None
    client.get(callback.replace("http://testserver", ""))
    assert run_sender(connection) == "sent 3"
    for outbound in (first, second, third):
        outbound.refresh_from_db()
        assert outbound.state == "sent" and outbound.last_error == ""
        assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1


def test_a_refused_message_fails_with_a_reason_and_retry_sends_it(providers_on_sandbox: SandboxProcess, bob: User,
                                                                  contact: Contact) -> None:
    client = client_for(bob)
    connection = connect_bob(client, providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 400, "path": "sendMail"})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "failed"
    page = page_text(client.get(f"/mail/outbox/{outbound.pk}/"))
    assert "Your mail provider refused this message, so it was not sent." in page
    assert ">Retry</button>" in page

    page = page_text(client.post(f"/mail/outbox/{outbound.pk}/retry/", follow=True))
    assert "Queued again" in page
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent"
    # A sent message is never sent again, Retry or not.
    page = page_text(client.post(f"/mail/outbox/{outbound.pk}/retry/", follow=True))
    assert "Only a message that failed can be sent again." in page
    assert ">Retry</button>" not in page
    run_sender(connection)
    assert len(sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)) == 1


@pytest.mark.parametrize("went_out", [True, False], ids=["went-out", "never-left"])
def test_a_message_left_sending_by_a_dead_worker_is_looked_for_before_it_is_sent(
    went_out: bool, providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    # A worker claimed it, may have sent it, and died: its lease has run out.
    OutboundEmail.objects.filter(pk=outbound.pk).update(state="sending", attempts=1)
    SendQueue.objects.update_or_create(connection=connection, defaults={
        "lease_owner": "dead-worker", "lease_until": timezone.now() - dt.timedelta(seconds=1)})
    if went_out:
        raw = (f"From: bob@greenleaf.example\r\nTo: dana@example.com\r\nSubject: Your invoice\r\n"
               f"Message-ID: {outbound.message_id}\r\n\r\nPlease find your invoice attached.\r\n")
        providers_on_sandbox.control("POST", "/accounts/microsoft/bob@greenleaf.example/messages",
                                     json={"folder": "Sent Items", "raw": raw})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent"
    assert len(sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)) == 1
    assert len(send_requests(providers_on_sandbox, "microsoft")) == (0 if went_out else 1)


def test_two_senders_never_send_the_same_message(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    from accounts.runs import claim_lease
    from mailsync.sending import drain_queue, send_lease

    assert claim_lease(SendQueue, connection.pk, "worker-a", send_lease())  # another worker is draining this mailbox
    assert drain_queue(connection_id=connection.pk, owner="worker-b").busy
    outbound.refresh_from_db()
    assert outbound.state == "queued" and not send_requests(providers_on_sandbox, "microsoft")


# -- a month-end batch ---------------------------------------------------------------------------


def test_a_month_end_batch_goes_out_at_the_mailboxes_pace_without_tripping_its_limit(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    """500 invoices from one Microsoft 365 user, with the sandbox's sending limit and our pace both
    scaled from 30 to 1,200 a minute (time runs 40 times faster; the arithmetic is the same)."""
    per_minute = 1200
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    providers_on_sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": per_minute})
    settings.MAIL_SEND_PER_MINUTE = {**settings.MAIL_SEND_PER_MINUTE, "microsoft": per_minute}
    batch = [queue(bob, f"Invoice {number}", to=f"customer{number}@example.com") for number in range(500)]

    started = time.monotonic()
    while OutboundEmail.objects.filter(state="queued").exists() and time.monotonic() - started < 120:
        run_sender(connection)
    elapsed = time.monotonic() - started

    assert OutboundEmail.objects.filter(state="sent").count() == 500
    sent_ids = [m["internet_message_id"] for m in sent_copies(providers_on_sandbox, "microsoft")]
    assert sorted(sent_ids) == sorted(o.message_id for o in batch)  # each once
    attempts = send_requests(providers_on_sandbox, "microsoft")
    assert len(attempts) == 500 and not [r for r in attempts if r["status"] == 429]
    # At most one send per 60 / 1200 s: 500 sends take at least 499 intervals.
    assert elapsed >= 499 * 60 / per_minute
    # Each send starts a full interval after the previous one was answered, so the provider sees
    # them at least an interval apart whatever the network does.
    gaps = [later["ts"] - earlier["ts"] for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= 60 / per_minute - 0.002
    print(f"500 messages in {elapsed:.1f} s; 429s from the send limit: 0")


# -- tenancy ---------------------------------------------------------------------------------------


def test_only_the_author_sees_their_outbox_and_outsiders_get_404(
    providers_on_sandbox: SandboxProcess, alice: User, bob: User, carol: User, contact: Contact,
    opportunity: Opportunity,
) -> None:
    connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob, "Private pricing")
    carol_client = client_for(carol)
    for url in (f"/mail/outbox/{outbound.pk}/", f"/mail/compose/contact/{contact.pk}/",
                f"/mail/compose/opportunity/{opportunity.pk}/"):
        assert carol_client.get(url).status_code == 404, url
    assert carol_client.post(f"/mail/outbox/{outbound.pk}/retry/").status_code == 404
    assert carol_client.post(f"/mail/compose/opportunity/{opportunity.pk}/",
                             {"to": "x@example.com", "subject": "s", "body": "b"}).status_code == 404
    assert "Private pricing" not in page_text(carol_client.get("/mail/outbox/"))
    # A colleague in the same company doesn't see Bob's outbox either: it is his.
    assert client_for(alice).get(f"/mail/outbox/{outbound.pk}/").status_code == 404
    assert "Private pricing" not in page_text(client_for(alice).get("/mail/outbox/"))
    assert "Private pricing" in page_text(client_for(bob).get("/mail/outbox/"))
