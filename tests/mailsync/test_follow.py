"""Following conversations: once a message is in Aspire, later mail of its conversation in the
Inbox and Sent is captured on its own, through the real adapters against the sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, PushChannel, SyncRun, User
from activities.conversations import stop_following
from activities.models import Activity
from crm.models import Contact
from mailsync.capture import run_capture
from mailsync.models import EmailSource, NeverCapture
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.mailsync.test_push import push_settings, wait_until_due  # noqa: F401 (a fixture)

BOB = "bob@greenleaf.example"
INBOX = {"microsoft": "Inbox", "google": "INBOX"}
SENT = {"microsoft": "Sent Items", "google": "SENT"}


@pytest.fixture(params=["microsoft", "google"])
def following(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    connection = connected_mailbox(providers_on_sandbox, bob, request.param, BOB)
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    run_capture(connection_id=connection.pk, owner="setup")  # folders, and where following starts
    return connection


def capture(connection: MailboxConnection) -> SyncRun:
    run = run_capture(connection_id=connection.pk, owner="test")
    assert run is not None
    return run


def folder(sandbox: SandboxProcess, provider: str, name: str) -> list[str]:
    mailbox = sandbox.control("GET", f"/accounts/{provider}/{BOB}/mailbox")
    return [m["subject"] for f in mailbox["folders"] if f["name"] == name for m in f["messages"]]


def mail_requests(sandbox: SandboxProcess, since: float) -> list[dict[str, Any]]:
    log = sandbox.control("GET", "/requests", params={"account": BOB, "since": since})["requests"]
    return [r for r in log if r["path"].startswith(("/v1.0", "/gmail", "/batch"))]


def dragged(sandbox: SandboxProcess, connection: MailboxConnection, subject: str = "Spring cleanup quote") -> Activity:
    drop(sandbox, connection.provider, BOB, mime(subject, message_id="<quote-1@example.com>"))
    run = capture(connection)
    assert (run.outcome, run.error, run.items_imported) == ("succeeded", "", 1)
    return Activity.objects.get(subject=subject)


def test_the_customers_reply_in_the_inbox_is_captured_onto_the_same_contacts(
    following: MailboxConnection, providers_on_sandbox: SandboxProcess, contact: Contact, prop: Any
) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    first = dragged(sandbox, following)
    first.regarding = prop
    first.save(update_fields=["regarding_property"])
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", body="Tuesday works for us.",
                                      in_reply_to="<quote-1@example.com>"), folder=INBOX[provider])

    run = capture(following)

    assert (run.outcome, run.error) == ("succeeded", "")
    reply = Activity.objects.get(subject="Re: Spring cleanup quote")
    assert (reply.origin, reply.get_origin_display()) == ("followed", "Captured automatically")
    assert list(reply.contacts.all()) == [contact]
    assert reply.regarding == prop
    assert reply.email.conversation_id == first.email.conversation_id
    assert run.items_imported == 1
    # Not moved: the user did not drag it.
    assert "Re: Spring cleanup quote" in folder(sandbox, provider, INBOX[provider])


def test_a_reply_written_in_the_mail_client_is_captured_from_sent(
    following: MailboxConnection, providers_on_sandbox: SandboxProcess, contact: Contact
) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    first = dragged(sandbox, following)
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", sender=f"Bob Staff <{BOB}>", to="dana@example.com",
                                      body="We'll be there at 8.", in_reply_to="<quote-1@example.com>"),
         folder=SENT[provider])

    capture(following)

    reply = Activity.objects.get(subject="Re: Spring cleanup quote")
    assert reply.origin == "followed" and list(reply.contacts.all()) == [contact]
    assert reply.email.conversation_id == first.email.conversation_id


def test_never_captured_automatically(following: MailboxConnection, providers_on_sandbox: SandboxProcess,
                                      contact: Contact, greenleaf: Any, alice: User) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    dragged(sandbox, following)
    NeverCapture.objects.create(company=greenleaf, entry="clinic.example")
    inbox = INBOX[provider]
    # Someone on the company's never-capture list is on it.
    drop(sandbox, provider, BOB, mime("Re: blocked", cc="nurse@clinic.example",
                                      in_reply_to="<quote-1@example.com>"), folder=inbox)
    # Only colleagues.
    drop(sandbox, provider, BOB, mime("Re: internal", sender="Alice <alice@greenleaf.example>", to=BOB,
                                      in_reply_to="<quote-1@example.com>"), folder=inbox)
    # Not a reply to anything in Aspire.
    drop(sandbox, provider, BOB, mime("Unrelated news"), folder=inbox)
    # Older than the conversation's first message in Aspire.
    drop(sandbox, provider, BOB, mime("Re: older", in_reply_to="<quote-1@example.com>",
                                      date=timezone.now() - dt.timedelta(days=1)), folder=inbox)

    capture(following)

    assert not Activity.objects.filter(
        subject__in=["Re: blocked", "Re: internal", "Unrelated news", "Re: older"]).exists()


def test_stop_following_stops_later_capture(following: MailboxConnection, providers_on_sandbox: SandboxProcess,
                                            contact: Contact, bob: User) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    first = dragged(sandbox, following)
    conversation = first.email.conversation
    assert conversation is not None
    stop_following(conversation=conversation, user=bob)
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", in_reply_to="<quote-1@example.com>"),
         folder=INBOX[provider])

    capture(following)

    assert not Activity.objects.filter(subject="Re: Spring cleanup quote").exists()


def test_with_following_off_nothing_is_captured_on_its_own(
    following: MailboxConnection, providers_on_sandbox: SandboxProcess, contact: Contact, bob: User
) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    dragged(sandbox, following)
    bob.follow_conversations = None  # back to the company's default, which is off
    bob.save(update_fields=["follow_conversations"])
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", in_reply_to="<quote-1@example.com>"),
         folder=INBOX[provider])
    capture(following)
    assert not Activity.objects.filter(subject="Re: Spring cleanup quote").exists()
    assert bob.company is not None
    bob.company.follow_conversations_default = True
    bob.company.save(update_fields=["follow_conversations_default"])
    capture(following)
    assert Activity.objects.get(subject="Re: Spring cleanup quote").origin == "followed"


def test_an_idle_run_makes_one_request_per_watched_folder(following: MailboxConnection,
                                                          providers_on_sandbox: SandboxProcess) -> None:
    capture(following)  # the first follow read (Graph's first delta round) is done
    since = timezone.now().timestamp()
    run = capture(following)
    requests = mail_requests(providers_on_sandbox, since)
    # The Aspire folder, then Graph: Inbox and Sent Items deltas; Gmail: the mailbox's history.
    folders = {"microsoft": 3, "google": 2}[following.provider]
    assert len(requests) == folders, [r["path"] for r in requests]
    assert run.provider_requests >= folders - 1


def test_an_expired_cursor_is_relisted_without_duplicates(
    following: MailboxConnection, providers_on_sandbox: SandboxProcess, contact: Contact
) -> None:
    sandbox, provider = providers_on_sandbox, following.provider
    dragged(sandbox, following)
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", in_reply_to="<quote-1@example.com>"),
         folder=INBOX[provider])
    capture(following)
    sandbox.control("POST", f"/accounts/{provider}/{BOB}/expire-sync-state")
    drop(sandbox, provider, BOB, mime("Re: Re: Spring cleanup quote", in_reply_to="<quote-1@example.com>"),
         folder=INBOX[provider])

    run = capture(following)

    assert run.outcome == "succeeded", run.error
    assert Activity.objects.filter(subject="Re: Spring cleanup quote").count() == 1
    assert Activity.objects.filter(subject="Re: Re: Spring cleanup quote").count() == 1
    assert EmailSource.objects.filter(activity__subject__startswith="Re:").count() == 2


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_reply_already_in_the_inbox_when_following_first_reads_it_is_captured(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact
) -> None:
    """Following's first read of the mailbox comes after the run has captured the Aspire folder:
    a reply that came in meanwhile (the customer answering at once) answers an email now in
    Aspire, and is captured, in that run, rather than skipped as older than where following starts."""
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    capture(connection)  # the folders; following is off, so it has not started
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    drop(sandbox, provider, BOB, mime("Spring cleanup quote", message_id="<quote-1@example.com>"))
    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", body="Tuesday works.",
                                      in_reply_to="<quote-1@example.com>"), folder=INBOX[provider])

    run = capture(connection)

    assert (run.outcome, run.error, run.items_imported) == ("succeeded", "", 2)
    reply = Activity.objects.get(subject="Re: Spring cleanup quote")
    assert reply.origin == "followed" and list(reply.contacts.all()) == [contact]
    assert reply.email.conversation_id == Activity.objects.get(subject="Spring cleanup quote").email.conversation_id
    assert capture(connection).items_imported == 0  # and only once

@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("push_settings")
@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_reply_arriving_in_the_inbox_makes_the_connection_due(provider: str, providers_on_sandbox: SandboxProcess,
                                                                bob: User, contact: Contact) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    capture(connection)  # the folders, the channels, where following starts
    channels = set(PushChannel.objects.filter(connection=connection).values_list("purpose", "watched"))
    if provider == "microsoft":
        assert {("follow_inbox", "inbox"), ("follow_sent", "sentitems")} <= channels
    else:  # Gmail's one watch: the Aspire label, the Inbox and Sent
        (watched,) = [w for purpose, w in channels if purpose == "mail"]
        assert watched.split(",")[1:] == ["INBOX", "SENT"]
    dragged(sandbox, connection)
    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + dt.timedelta(hours=1))

    drop(sandbox, provider, BOB, mime("Re: Spring cleanup quote", in_reply_to="<quote-1@example.com>"),
         folder=INBOX[provider])

    assert wait_until_due(connection) < 10
    capture(connection)
    assert Activity.objects.get(subject="Re: Spring cleanup quote").origin == "followed"


def test_the_same_reply_in_two_mailboxes_is_one_activity_with_two_sources(
    providers_on_sandbox: SandboxProcess, alice: User, bob: User, contact: Contact
) -> None:
    sandbox = providers_on_sandbox
    bobs = connected_mailbox(sandbox, bob, "microsoft", BOB)
    alices = connected_mailbox(sandbox, alice, "google", "alice@greenleaf.example")
    User.objects.filter(pk__in=[alice.pk, bob.pk]).update(follow_conversations=True)
    for connection in (bobs, alices):
        capture(connection)
    dragged(sandbox, bobs)  # only Bob drags it; Alice's copy of the reply follows by its References
    reply = mime("Re: Spring cleanup quote", to=f"{BOB}, alice@greenleaf.example",
                 in_reply_to="<quote-1@example.com>", message_id="<reply-to-both@example.com>")
    drop(sandbox, "microsoft", BOB, reply, folder="Inbox")
    drop(sandbox, "google", "alice@greenleaf.example", reply, folder="INBOX")

    capture(bobs)
    capture(alices)

    activity = Activity.objects.get(subject="Re: Spring cleanup quote")
    assert set(EmailSource.objects.filter(activity=activity).values_list("connection_id", flat=True)) == {
        bobs.pk, alices.pk}


def test_a_reply_to_mail_sent_from_aspire_follows_it(following: MailboxConnection,
                                                     providers_on_sandbox: SandboxProcess, contact: Contact,
                                                     bob: User) -> None:
    from mailsync.outbox import queue_email
    from mailsync.send_tasks import send_queue

    sandbox, provider = providers_on_sandbox, following.provider
    outbound = queue_email(author=bob, to="dana@example.com", subject="Your spring cleanup quote",
                           body="The quote is attached.")
    send_queue(str(following.pk))
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    drop(sandbox, provider, BOB, mime("Re: Your spring cleanup quote", in_reply_to=outbound.message_id),
         folder=INBOX[provider])

    capture(following)

    sent, reply = (Activity.objects.get(subject=s) for s in ("Your spring cleanup quote",
                                                             "Re: Your spring cleanup quote"))
    assert (sent.origin, reply.origin) == ("sent", "followed")
    assert reply.email.conversation_id == sent.email.conversation_id
    assert list(reply.contacts.all()) == [contact]
    # The sent copy in Sent is recognised: a source, not a second Activity.
    assert Activity.objects.filter(subject="Your spring cleanup quote").count() == 1


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_following_works_with_sync_email_alone(provider: str, providers_on_sandbox: SandboxProcess,
                                               contact: Contact, bob: User) -> None:
    """Sync Email on, Sync Aspire Folder off: the replies to mail sent from Aspire are still
    followed; no Aspire or Processed folder is made, and with following off too there is no run."""
    from mailsync.outbox import queue_email
    from mailsync.send_tasks import send_queue
    from tests.conftest import client_for
    from tests.mailboxes import settings_form

    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    response = client_for(bob).post("/settings/", settings_form(
        bob, sync_email=True, sync_calendar=True, provider=provider, mailbox_address=BOB, follow_conversations="on"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.sync_email and not connection.sync_aspire_folder and connection.reads_mail
    capture(connection)  # where following starts
    outbound = queue_email(author=bob, to="dana@example.com", subject="Your spring cleanup quote",
                           body="The quote is attached.")
    send_queue(str(connection.pk))
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    drop(sandbox, provider, BOB, mime("Re: Your spring cleanup quote", in_reply_to=outbound.message_id),
         folder=INBOX[provider])

    run = capture(connection)

    assert run.outcome == "succeeded", run.error
    reply = Activity.objects.get(subject="Re: Your spring cleanup quote")
    assert reply.origin == "followed" and list(reply.contacts.all()) == [contact]
    names = {f["name"] for f in sandbox.control("GET", f"/accounts/{provider}/{BOB}/mailbox")["folders"]}
    assert "Aspire" not in names and "Processed" not in names

    bob.follow_conversations = False
    bob.save(update_fields=["follow_conversations"])
    assert run_capture(connection_id=connection.pk, owner="test") is None
