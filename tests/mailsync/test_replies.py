"""Reply, Reply all and Forward on an email in Aspire, against the provider sandbox through the real
adapters: the form filled in as mail clients fill it, the reply sent once through the send queue,
in the original's thread at the provider (Gmail's threadId, Graph's conversationId), with the
thread headers, a signature and an HTML part; Forward keeps the attachments; who may answer what."""

from __future__ import annotations

import email
import email.policy
import html
import re
from email.message import EmailMessage as ParsedMessage
from pathlib import Path
from typing import Any

import pytest

from accounts.grants import fresh_grant
from accounts.models import MailboxConnection, User
from accounts.provider_registry import get_provider
from activities.models import Activity
from crm.models import Contact
from mailsync.capture import run_capture
from mailsync.models import OutboundEmail
from mailsync.replies import Mode, reply_subject
from mailsync.send_tasks import send_queue
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox, drop

PROVIDERS = ["microsoft", "google"]
SENT_FOLDER = {"microsoft": "Sent Items", "google": "SENT"}
RAW = (Path(__file__).parent / "replies" / "quote-reply.eml").read_bytes()
ORIGINAL_ID = "<CAF2-quote-3@mail.example.com>"


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def mailbox_messages(sandbox: SandboxProcess, provider: str) -> list[dict[str, Any]]:
    box = sandbox.control("GET", f"/accounts/{provider}/bob@greenleaf.example/mailbox")
    seen: dict[str, dict[str, Any]] = {}
    for folder in box["folders"]:
        for message in folder["messages"]:
            seen.setdefault(message["id"], {**message, "folder": folder["name"]})
    return list(seen.values())


def sent_copies(sandbox: SandboxProcess, provider: str, message_id: str) -> list[dict[str, Any]]:
    return [m for m in mailbox_messages(sandbox, provider)
            if m["internet_message_id"] == message_id and m["folder"] == SENT_FOLDER[provider]]


@pytest.fixture(params=PROVIDERS)
def captured(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User,
             contact: Contact) -> tuple[str, MailboxConnection, Activity]:
    """Dana's email, dragged into Bob's Aspire folder and captured."""
    provider = request.param
    connection = connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example",
                                   display_name="Bob Staff")
    run_capture(connection_id=connection.pk, owner="setup")
    drop(providers_on_sandbox, provider, "bob@greenleaf.example", RAW)
    run_capture(connection_id=connection.pk, owner="test")
    return provider, connection, Activity.objects.get(email__message_id=ORIGINAL_ID.strip("<>"))


def parsed_copy(provider: str, connection: MailboxConnection, copy: dict[str, Any]) -> ParsedMessage:
    grant = fresh_grant(connection_id=connection.pk)
    stored_id = copy["immutable_id"] if provider == "microsoft" else copy["id"]
    parsed = email.message_from_bytes(get_provider(provider).fetch_mime(grant, stored_id), policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    return parsed


def test_reply_from_aspire_joins_the_thread_at_the_provider_once(
    captured: tuple[str, MailboxConnection, Activity], providers_on_sandbox: SandboxProcess, bob: User,
    contact: Contact,
) -> None:
    provider, connection, original = captured
    bob.email_signature = "Bob Staff\nGreenleaf Landscaping · 555-0142"
    bob.save(update_fields=["email_signature"])
    client = client_for(bob)
    email_page = page_text(client.get(f"/activities/{original.pk}/"))
    for mode, label in (("reply", "Reply"), ("reply-all", "Reply all"), ("forward", "Forward")):
        assert f'href="/mail/reply/{original.pk}/{mode}/">{label}</a>' in email_page

    form = page_text(client.get(f"/mail/reply/{original.pk}/reply/"))
    # Reply goes where Dana's Reply-To asks; the subject keeps its one "RE:".
    assert 'value="office@whitfield.example"' in form
    assert 'value="RE: Spring mulch quote"' in form
    assert "wrote:" in form and "Dark brown" in form
    assert "<script>" not in form.split("quoted-original")[1]

    response = client.post(f"/mail/reply/{original.pk}/reply/", {
        "to": "office@whitfield.example", "cc": "", "subject": "RE: Spring mulch quote",
        "body": "Hi Dana,\n\nDark brown it is: we deliver Thursday.", "regarding": "",
    })
    outbound = OutboundEmail.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/mail/outbox/{outbound.pk}/"
    assert outbound.replying_to == original and outbound.in_reply_to == ORIGINAL_ID

    assert str(send_queue(str(connection.pk))) == "sent 1"
    assert str(send_queue(str(connection.pk))) == "sent 0"  # a second drain sends nothing again

    [copy] = sent_copies(providers_on_sandbox, provider, outbound.message_id)
    [at_provider] = [m for m in mailbox_messages(providers_on_sandbox, provider)
                     if m["internet_message_id"] == ORIGINAL_ID]
    # The provider groups the reply with Dana's email: one conversation / thread.
    assert copy["thread_id"] == at_provider["thread_id"]

    parsed = parsed_copy(provider, connection, copy)
    assert parsed["In-Reply-To"] == ORIGINAL_ID
    assert parsed["References"].split() == ["<quote-1@greenleaf.example>", "<quote-2@greenleaf.example>",
                                            ORIGINAL_ID]
    assert parsed["Subject"] == "RE: Spring mulch quote"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(preferencelist=("plain",))
    markup = parsed.get_body(preferencelist=("html",))
    assert text is not None and markup is not None
    plain = text.get_content().replace("\r\n", "\n")
    assert plain.startswith("Hi Dana,\n\nDark brown it is: we deliver Thursday.\n\n-- \nBob Staff\n")
    assert "wrote:\n> Hi Bob,\n>\n> Dark brown mulch, please." in plain
    rich = markup.get_content()
    assert "Greenleaf Landscaping · 555-0142" in rich
    assert '<blockquote type="cite">' in rich and "<b>mulch</b>" in rich
    assert "<script" not in rich and "onclick" not in rich

    # Sent from Aspire: an email Activity on Dana's contact, carrying its thread headers.
    outbound.refresh_from_db()
    assert outbound.activity is not None and outbound.activity.origin == "sent"
    assert outbound.activity.email.in_reply_to == ORIGINAL_ID
    # In Aspire too the reply is in Dana's conversation, not the start of one of its own.
    assert outbound.activity.email.conversation_id is not None
    assert outbound.activity.email.conversation_id == original.email.conversation_id
    # On Dana's contact like her email, though it went to her Reply-To address.
    assert list(outbound.activity.contacts.all()) == [contact]


def test_reply_all_and_forward_fill_in_as_mail_clients_do(
    captured: tuple[str, MailboxConnection, Activity], providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    provider, connection, original = captured
    client = client_for(bob)
    reply_all = page_text(client.get(f"/mail/reply/{original.pk}/reply-all/"))
    # The Reply-To, then the other recipients, never Bob's own address; Cc as it was.
    assert 'value="office@whitfield.example, alice@greenleaf.example"' in reply_all
    assert 'value="sam@whitfield.example"' in reply_all

    forward = page_text(client.get(f"/mail/reply/{original.pk}/forward/"))
    assert re.search(r'<input[^>]*name="to"', forward) and not re.search(r'<input[^>]*name="to"[^>]*value=', forward)
    assert 'value="Fwd: RE: Spring mulch quote"' in forward
    assert "Site plan.pdf" in forward and "---------- Forwarded message ---------" in forward
    [kept] = list(original.email.attachments.all())
    client.post(f"/mail/reply/{original.pk}/forward/", {
        "to": "crew@greenleaf.example", "subject": "Fwd: RE: Spring mulch quote",
        "body": "For Thursday's delivery.", "keep_attachment": [str(kept.pk)],
    })
    outbound = OutboundEmail.objects.get()
    assert str(send_queue(str(connection.pk))) == "sent 1"
    [copy] = sent_copies(providers_on_sandbox, provider, outbound.message_id)
    parsed = parsed_copy(provider, connection, copy)
    files = {part.get_filename(): part.get_content() for part in parsed.iter_attachments()}
    assert files == {"Site plan.pdf": b"%PDF-1.4\n% site plan\n%%EOF\n"}
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None
    assert "From: Dana Whitfield <dana@example.com>" in text.get_content()


def test_forward_may_go_without_words_of_ones_own_a_reply_may_not(
    captured: tuple[str, MailboxConnection, Activity], providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    provider, connection, original = captured
    client = client_for(bob)
    # A reply with nothing written is almost always a slip: it is refused, and nothing is queued.
    for mode in ("reply", "reply-all"):
        page = page_text(client.post(f"/mail/reply/{original.pk}/{mode}/", {
            "to": "office@whitfield.example", "subject": "RE: Spring mulch quote", "body": "  "}))
        assert "This field is required." in page, mode
    assert not OutboundEmail.objects.exists()

    # A forward's content is the original and its attachments: an empty message is normal.
    [kept] = list(original.email.attachments.all())
    response = client.post(f"/mail/reply/{original.pk}/forward/", {
        "to": "crew@greenleaf.example", "subject": "Fwd: RE: Spring mulch quote", "body": "",
        "keep_attachment": [str(kept.pk)],
    })
    outbound = OutboundEmail.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/mail/outbox/{outbound.pk}/"
    assert str(send_queue(str(connection.pk))) == "sent 1"
    [copy] = sent_copies(providers_on_sandbox, provider, outbound.message_id)
    parsed = parsed_copy(provider, connection, copy)
    assert {part.get_filename() for part in parsed.iter_attachments()} == {"Site plan.pdf"}
    text = parsed.get_body(preferencelist=("plain",))
    markup = parsed.get_body(preferencelist=("html",))
    assert text is not None and markup is not None
    # It starts with the forwarded original: no blank first lines where words would have been.
    assert text.get_content().replace("\r\n", "\n").startswith(
        "---------- Forwarded message ---------\nFrom: Dana Whitfield <dana@example.com>\n")
    assert "<div></div>" not in markup.get_content()
    assert "Optional: the forwarded email and its attachments follow." in page_text(
        client.get(f"/mail/reply/{original.pk}/forward/"))


def test_only_the_company_may_answer_an_email(
    captured: tuple[str, MailboxConnection, Activity], carol: User, alice: User,
) -> None:
    _provider, _connection, original = captured
    outsider = client_for(carol)
    for mode in ("reply", "reply-all", "forward"):
        assert outsider.get(f"/mail/reply/{original.pk}/{mode}/").status_code == 404
        assert outsider.post(f"/mail/reply/{original.pk}/{mode}/", {
            "to": "x@example.com", "subject": "x", "body": "x"}).status_code == 404
    assert client_for(alice).get(f"/mail/reply/{original.pk}/sideways/").status_code == 404
    assert not OutboundEmail.objects.exists()
    # A colleague without a mailbox of their own is told so, and nothing is queued.
    page = page_text(client_for(alice).post(f"/mail/reply/{original.pk}/reply/", {
        "to": "office@whitfield.example", "subject": "RE: Spring mulch quote", "body": "On it."}))
    assert "Connect your mailbox in Settings" in page
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize(("subject", "mode", "expected"), [
    ("Spring mulch quote", Mode.REPLY, "Re: Spring mulch quote"),
    ("Re: Spring mulch quote", Mode.REPLY, "Re: Spring mulch quote"),
    ("RE: Spring mulch quote", Mode.REPLY_ALL, "RE: Spring mulch quote"),
    ("re : Spring mulch quote", Mode.REPLY, "re : Spring mulch quote"),
    ("Fwd: Spring mulch quote", Mode.REPLY, "Re: Fwd: Spring mulch quote"),
    ("Spring mulch quote", Mode.FORWARD, "Fwd: Spring mulch quote"),
    ("FW: Spring mulch quote", Mode.FORWARD, "FW: Spring mulch quote"),
    ("Re: Spring mulch quote", Mode.FORWARD, "Fwd: Re: Spring mulch quote"),
    ("", Mode.REPLY, "Re:"),
])
def test_re_and_fwd_are_added_once(subject: str, mode: Mode, expected: str) -> None:
    assert reply_subject(subject, mode) == expected
