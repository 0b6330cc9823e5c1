"""Sending mail from Aspire through the author's own mailbox: queue, pace, send, record.

``queue_email`` stores the message (with its own Message-ID, fixed before any attempt) and asks
for the mailbox's queue to be drained once the transaction commits. ``drain_queue`` is what the
``mailsync.send_queue`` task runs: it holds the connection's lease, so one sender per mailbox
sends at a time, and sends the due messages oldest first, each at least ``60 / per-minute``
seconds after the previous one finished (``MAIL_SEND_PER_MINUTE``).

**Never a second copy.** A message is claimed (queued -> sending, a conditional UPDATE) before it is
sent. When an attempt ends with no answer (``SendOutcomeUnknown``: a timeout or a connection lost
after the request left), a server error, or a worker that died mid-send (a message left "sending"
when the lease lapsed), the message is marked ``verify_before_send``. Its next attempt first looks
for its Message-ID in the mailbox (``find_sent``): found means it went out, so it is recorded as
sent and not sent again; not found means the provider never accepted it, so it is sent. Only
answers that prove nothing went out (throttling, a rejected token) are retried without that check.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.mailbox import fresh_grant, mark_needs_signin
from accounts.models import MailboxConnection, User
from accounts.provider_registry import get_provider
from accounts.tenancy import ensure_same_company
from activities.models import REGARDING_FIELDS, Activity, EmailMessage, Regarding
from activities.services import create_activity
from crm.models import Contact, ContactEmail
from providers.errors import (
    AccessTokenRejected,
    AuthRevoked,
    ProviderError,
    SendOutcomeUnknown,
    Throttled,
    TransientError,
)

from .mime import dedupe_key_for_message_id
from .models import OutboundAttachment, OutboundEmail, SendQueue
from .outgoing import AttachmentFile, build_mime, clean_subject, new_message_id, parse_addresses

log = logging.getLogger(__name__)

# A sender renews its lease before every message; a worker that dies mid-queue holds the mailbox
# this long at most. Longer than the slowest single send (a 25 MB upload with 30 s timeouts).
LEASE = dt.timedelta(minutes=10)
# One task run sends for at most this long, then hands over to a new task so other mailboxes'
# mail interleaves on the workers.
DRAIN_BUDGET_SECONDS = 55.0
# The pace's short gaps are slept through; a longer wait (Retry-After, a backoff) frees the worker
# and a new task is scheduled for when it is over.
MAX_INLINE_WAIT_SECONDS = 5.0
MAX_ATTEMPTS = 8
MAX_BACKOFF = dt.timedelta(minutes=30)

WAITING_FOR_SIGNIN = (
    "Aspire's access to your mailbox has ended. This message will be sent after you reconnect your mailbox "
    "in Settings."
)
NOT_CONNECTED = "Connect your mailbox in Settings to send mail from Aspire."
CHECKING = "Aspire could not confirm that this message was sent. It will check your Sent folder before trying again."


class SendRefused(Exception):
    """The message can't be queued; ``message`` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class DrainResult:
    sent: int = 0
    busy: bool = False
    # When this mailbox's queue should be looked at again (mail waiting on a pace, a backoff or a
    # budget); None when nothing is left that this mailbox can send now.
    resume_at: dt.datetime | None = None


# -- composing -------------------------------------------------------------------------------


def sending_connection(user: User) -> MailboxConnection:
    """The author's mailbox, if mail can be queued for it (connected, or waiting for a sign-in)."""
    connection = MailboxConnection.objects.filter(user=user).first()
    if connection is None or connection.state == MailboxConnection.State.DISCONNECTED:
        raise SendRefused(NOT_CONNECTED)
    return connection


def matching_contacts(company_id: uuid.UUID, addresses: Sequence[str]) -> list[Contact]:
    """The company's contacts with any of these addresses (case-insensitive)."""
    lowered = [address.lower() for address in addresses]
    contact_ids = (
        ContactEmail.objects.filter(company_id=company_id)
        .annotate(lower_address=Lower("address"))
        .filter(lower_address__in=lowered)
        .values("contact_id")
    )
    return list(Contact.objects.filter(company_id=company_id, pk__in=contact_ids))


@transaction.atomic
def queue_email(
    *,
    author: User,
    to: str,
    cc: str = "",
    subject: str,
    body: str,
    attachments: Sequence[AttachmentFile] = (),
    regarding: Regarding | None = None,
) -> OutboundEmail:
    """Queue a message to go out through the author's own mailbox. ``to`` and ``cc`` are as typed
    (comma-separated). Raises ValidationError for bad input, SendRefused without a mailbox."""
    connection = sending_connection(author)
    to_addresses = parse_addresses(to, field="To")
    cc_addresses = parse_addresses(cc, field="Cc")
    if not to_addresses:
        raise ValidationError("Enter at least one address to send to.")
    total = sum(len(attachment.content) for attachment in attachments)
    if total > settings.MAIL_SEND_MAX_ATTACHMENT_BYTES:
        limit_mb = settings.MAIL_SEND_MAX_ATTACHMENT_BYTES // (1024 * 1024)
        raise ValidationError(f"Attachments can be {limit_mb} MB in all; these are {total / 1024 / 1024:.1f} MB.")
    ensure_same_company(author.tenant_id, regarding, field="regarding")
    outbound = OutboundEmail(
        company_id=author.tenant_id, author=author, connection=connection,
        message_id=new_message_id(connection.mailbox_address.rpartition("@")[2]),
        to=to_addresses, cc=cc_addresses, subject=clean_subject(subject), body=body,
    )
    if regarding is not None:
        # OutboundEmail names its Regarding fields as Activity does.
        setattr(outbound, REGARDING_FIELDS[type(regarding)], regarding)
    if connection.state != MailboxConnection.State.CONNECTED:
        outbound.last_error = WAITING_FOR_SIGNIN
    outbound.save()
    outbound.contacts.set(matching_contacts(author.tenant_id, to_addresses + cc_addresses))
    for attachment in attachments:
        stored = OutboundAttachment(outbound=outbound, filename=attachment.filename,
                                    content_type=attachment.content_type, size=len(attachment.content))
        # Stored under a random name; the user's filename stays in the row and in the message.
        stored.file.save(uuid.uuid4().hex, ContentFile(attachment.content), save=False)
        stored.save()
    transaction.on_commit(lambda: _request_drain(connection.pk))
    return outbound


@transaction.atomic
def retry_email(*, outbound: OutboundEmail) -> bool:
    """Queue a failed message again (its Message-ID stays, so the Sent-folder check still works).
    Never a sent one: returns False when the message was not in the failed state."""
    requeued = OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.FAILED).update(
        state=OutboundEmail.State.QUEUED, attempts=0, not_before=timezone.now(), last_error="",
    )
    if requeued:
        transaction.on_commit(lambda: _request_drain(outbound.connection_id))
    return bool(requeued)


def _request_drain(connection_id: uuid.UUID) -> None:
    from .send_tasks import send_queue  # the task module imports this one

    send_queue.delay(str(connection_id))


def connections_with_due_mail() -> list[uuid.UUID]:
    """Connected mailboxes with queued mail whose wait is over (for the every-minute sweep)."""
    return list(
        OutboundEmail.objects.filter(
            state=OutboundEmail.State.QUEUED, not_before__lte=timezone.now(),
            connection__state=MailboxConnection.State.CONNECTED,
        ).values_list("connection_id", flat=True).distinct()
    )


def has_queued_mail(connection_id: uuid.UUID) -> bool:
    return OutboundEmail.objects.filter(connection_id=connection_id, state=OutboundEmail.State.QUEUED).exists()


# -- the lease: one sender per mailbox ------------------------------------------------------------


def claim_queue(connection_id: uuid.UUID, owner: str) -> bool:
    SendQueue.objects.get_or_create(connection_id=connection_id)
    now = timezone.now()
    claimed = (
        SendQueue.objects.filter(connection_id=connection_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(lease_until=now + LEASE, lease_owner=owner)
    )
    return claimed == 1


def release_queue(connection_id: uuid.UUID, owner: str) -> None:
    SendQueue.objects.filter(connection_id=connection_id, lease_owner=owner).update(lease_until=None, lease_owner="")


# -- sending ---------------------------------------------------------------------------------------


def send_interval(provider: str) -> dt.timedelta:
    per_minute = settings.MAIL_SEND_PER_MINUTE[provider]
    return dt.timedelta(seconds=60 / per_minute)


def drain_queue(*, connection_id: uuid.UUID | str, owner: str,
                budget_seconds: float = DRAIN_BUDGET_SECONDS) -> DrainResult:
    """Send the mailbox's due mail, oldest first, at the mailbox's pace, for up to
    ``budget_seconds``. Returns at once (``busy``) when another sender holds the mailbox."""
    connection = MailboxConnection.objects.get(pk=connection_id)
    if not claim_queue(connection.pk, owner):
        return DrainResult(busy=True)
    try:
        result = _drain(connection, owner, budget_seconds)
    finally:
        release_queue(connection.pk, owner)
    if result.busy or result.resume_at is not None:
        return result
    # Mail queued while we held the lease had its own sender turned away as busy: look again.
    waiting = OutboundEmail.objects.filter(
        connection=connection, state=OutboundEmail.State.QUEUED, connection__state=MailboxConnection.State.CONNECTED,
    ).order_by("not_before").values_list("not_before", flat=True).first()
    return DrainResult(sent=result.sent, resume_at=waiting)


def _drain(connection: MailboxConnection, owner: str, budget_seconds: float) -> DrainResult:
    started = time.monotonic()
    sent = 0
    # Left "sending" by a sender that died mid-send: it may have gone out.
    OutboundEmail.objects.filter(connection=connection, state=OutboundEmail.State.SENDING).update(
        state=OutboundEmail.State.QUEUED, verify_before_send=True, last_error=CHECKING,
    )
    interval = send_interval(connection.provider)
    while True:
        connection.refresh_from_db(fields=["state"])
        if connection.state != MailboxConnection.State.CONNECTED:
            _wait_for_signin(connection)
            return DrainResult(sent=sent)
        outbound = (
            OutboundEmail.objects.filter(connection=connection, state=OutboundEmail.State.QUEUED)
            .order_by("not_before", "created_at").first()
        )
        if outbound is None:
            return DrainResult(sent=sent)
        queue = SendQueue.objects.get(pk=connection.pk)
        start_at = max(outbound.not_before, queue.next_send_at)
        wait = (start_at - timezone.now()).total_seconds()
        if wait > MAX_INLINE_WAIT_SECONDS or time.monotonic() - started + max(wait, 0) > budget_seconds:
            return DrainResult(sent=sent, resume_at=start_at)
        if wait > 0:
            time.sleep(wait)
        if not claim_queue(connection.pk, owner):  # renew; lost only if we overran the lease
            return DrainResult(sent=sent, busy=True)
        if _send_one(connection, outbound.pk, interval):
            sent += 1


def _wait_for_signin(connection: MailboxConnection) -> None:
    OutboundEmail.objects.filter(connection=connection, state=OutboundEmail.State.QUEUED).update(
        last_error=WAITING_FOR_SIGNIN
    )


def _send_one(connection: MailboxConnection, outbound_id: uuid.UUID, interval: dt.timedelta) -> bool:
    """One attempt at one message; True when it is now sent. Its outcome is recorded on its row."""
    claimed = OutboundEmail.objects.filter(pk=outbound_id, state=OutboundEmail.State.QUEUED).update(
        state=OutboundEmail.State.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    outbound = OutboundEmail.objects.select_related("author").get(pk=outbound_id)
    provider = get_provider(connection.provider)
    attempted_send = False
    try:
        grant = fresh_grant(connection_id=connection.pk)
        for renewed in (False, True):
            try:
                if outbound.verify_before_send and provider.find_sent(grant, outbound.message_id):
                    _mark_sent(outbound)
                    return True
                mime = _mime_of(outbound, connection)
                attempted_send = True
                provider.send_mime(grant, mime)
                break
            except AccessTokenRejected:
                if renewed:
                    raise
                # The provider refused the access token, so nothing was read or sent: renew it
                # once (a refused refresh means "needs sign-in") and go again.
                attempted_send = False
                grant = fresh_grant(connection_id=connection.pk, force=True)
    except AuthRevoked as exc:
        # fresh_grant has already put the connection in "needs sign-in" when the refresh failed;
        # a refusal on the send itself (permissions withdrawn) does it here.
        if MailboxConnection.objects.filter(pk=connection.pk, state=MailboxConnection.State.CONNECTED).exists():
            mark_needs_signin(connection_id=connection.pk, message=exc.user_message)
        _requeue(outbound, WAITING_FOR_SIGNIN, not_before=timezone.now())
        return False
    except SendOutcomeUnknown:
        _pace(connection, interval)
        delay = dt.timedelta(seconds=settings.MAIL_SEND_VERIFY_DELAY_SECONDS)
        _requeue(outbound, CHECKING, not_before=timezone.now() + delay, verify=True)
        return False
    except Throttled as exc:
        # The whole mailbox is asked to wait, not only this message.
        resume = timezone.now() + dt.timedelta(seconds=exc.retry_after)
        SendQueue.objects.filter(pk=connection.pk).update(next_send_at=resume)
        _retry_or_fail(outbound, exc.user_message, not_before=resume)
        return False
    except AccessTokenRejected as exc:
        _retry_or_fail(outbound, exc.user_message, not_before=timezone.now() + _backoff(outbound.attempts))
        return False
    except TransientError as exc:
        # A server error on the send itself may hide an accepted message: check before resending.
        if attempted_send:
            _pace(connection, interval)
        _retry_or_fail(outbound, exc.user_message, not_before=timezone.now() + _backoff(outbound.attempts),
                       verify=attempted_send or outbound.verify_before_send)
        return False
    except ProviderError as exc:
        _fail(outbound, "Your mail provider refused this message, so it was not sent. "
                        f"Check the addresses and attachments, then try again. ({exc.detail or exc})"[:1000])
        return False
    except Exception:
        # Our own bug: the message may or may not have gone; never resend it blindly.
        log.exception("sending %s failed", outbound_id)
        _requeue(outbound, CHECKING, not_before=timezone.now() + _backoff(outbound.attempts),
                 verify=attempted_send or outbound.verify_before_send)
        raise
    _pace(connection, interval)
    _mark_sent(outbound)
    return True


def _pace(connection: MailboxConnection, interval: dt.timedelta) -> None:
    # Counted from when the send finished: the provider counts a message when the request
    # arrives, which is before our answer, so this spacing holds at the provider too.
    SendQueue.objects.filter(pk=connection.pk).update(next_send_at=timezone.now() + interval)


def _backoff(attempts: int) -> dt.timedelta:
    seconds = min(MAX_BACKOFF.total_seconds(), 30 * 2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not secrets)


def _requeue(outbound: OutboundEmail, reason: str, *, not_before: dt.datetime, verify: bool | None = None) -> None:
    changes: dict[str, object] = {"state": OutboundEmail.State.QUEUED, "last_error": reason, "not_before": not_before}
    if verify is not None:
        changes["verify_before_send"] = verify
    OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.SENDING).update(**changes)


def _retry_or_fail(outbound: OutboundEmail, reason: str, *, not_before: dt.datetime,
                   verify: bool | None = None) -> None:
    if outbound.attempts >= MAX_ATTEMPTS:
        if verify:
            OutboundEmail.objects.filter(pk=outbound.pk).update(verify_before_send=True)
        _fail(outbound, f"Aspire tried {outbound.attempts} times and could not send this message. {reason}")
        return
    _requeue(outbound, reason, not_before=not_before, verify=verify)


def _fail(outbound: OutboundEmail, reason: str) -> None:
    OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.SENDING).update(
        state=OutboundEmail.State.FAILED, last_error=reason
    )


def _mime_of(outbound: OutboundEmail, connection: MailboxConnection) -> bytes:
    attachments = []
    for stored in outbound.attachments.all():
        with stored.file.open("rb") as handle:
            attachments.append(AttachmentFile(stored.filename, stored.content_type, handle.read()))
    return build_mime(
        from_address=connection.mailbox_address, from_name=connection.display_name or str(outbound.author),
        to=outbound.to, cc=outbound.cc, subject=outbound.subject, body=outbound.body,
        message_id=outbound.message_id, date=outbound.created_at, attachments=attachments,
    )


@transaction.atomic
def _mark_sent(outbound: OutboundEmail) -> None:
    """Sent: the email Activity on the recipients' contacts with the chosen Regarding, once."""
    sent_at = timezone.now()
    # A conditional UPDATE first: it makes this idempotent, and on SQLite it takes the write lock
    # before any read, so a busy database makes it wait rather than fail.
    marked = OutboundEmail.objects.filter(pk=outbound.pk).exclude(state=OutboundEmail.State.SENT).update(
        state=OutboundEmail.State.SENT, sent_at=sent_at, last_error="", verify_before_send=False,
    )
    if not marked:
        return
    sent = OutboundEmail.objects.select_related("connection", "author").get(pk=outbound.pk)
    # The email behind the Activity is keyed by Message-ID: when someone captures this message
    # from a mailbox, capture finds this Activity instead of making a second one (and if capture
    # got there first, while we were checking the Sent folder, we use its Activity).
    dedupe_key = dedupe_key_for_message_id(sent.message_id)
    captured = EmailMessage.objects.filter(company_id=sent.company_id, dedupe_key=dedupe_key).first()
    if captured is not None:
        activity = captured.activity
    else:
        activity = create_activity(
            company=sent.company, kind=Activity.Kind.EMAIL, subject=sent.subject, body=sent.body,
            occurred_at=sent_at, origin=Activity.Origin.SENT_FROM_ASPIRE, owner=sent.author,
            contacts=sent.contacts.all(), regarding=_regarding_of(sent),
        )
        EmailMessage.objects.create(
            activity=activity, company_id=sent.company_id, dedupe_key=dedupe_key,
            message_id=sent.message_id, from_name=sent.connection.display_name,
            from_address=sent.connection.mailbox_address,
            to=[["", address] for address in sent.to], cc=[["", address] for address in sent.cc],
            text_body=sent.body,
        )
    OutboundEmail.objects.filter(pk=sent.pk).update(activity=activity)


def _regarding_of(outbound: OutboundEmail) -> Regarding | None:
    return outbound.regarding_opportunity or outbound.regarding_property or outbound.regarding_work_ticket
