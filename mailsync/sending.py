"""Sending mail from Aspire through the author's own mailbox: the sender.

Mail is queued by ``mailsync.outbox`` (with its own Message-ID, fixed before any attempt), which asks
for the mailbox's queue to be drained (``request_drain``). ``drain_queue`` is what the
``mailsync.send_queue`` task runs: it holds the mailbox's lease (``accounts.runs``), so one sender
per mailbox sends at a time, and sends the due messages oldest first, each at least
``60 / per-minute`` seconds after the previous one finished (``MAIL_SEND_PER_MINUTE``).

**One drain pending per mailbox.** A request for a drain is a row update (``SendQueue.drain_at``,
with a new generation), and only a request that changes it hands a task to the broker; a task
whose generation is no longer current does nothing. So a burst of queued mail, or a sender that
waits for its pace, makes one task, not one per message. A wait longer than a few minutes is left
to the every-minute sweep (``sweep``) rather than held by the broker, and the sweep also hands
over again a drain whose task was lost with a killed worker.

**Never a second copy.** A message is claimed (queued -> sending, a conditional UPDATE) before it is
sent. When the answer does not prove whether the provider took it (``SendOutcomeUnknown``: no answer,
or a server error from a gateway that may have passed it on), or the worker died mid-send (a message
left "sending" when the lease lapsed), the message is marked ``verify_before_send``: its next
attempt first looks for its Message-ID in the mailbox (``find_sent``). Found means it went out, so it
is recorded as sent; not found means the provider never took it, so it is sent. Only answers that
prove nothing went out (a 429, a refused access token, a refusal of the message) are acted on
without that check.

**The database is the source of truth.** A message left "sending" by a dead worker, or queued mail
whose drain was lost, is found by the sweep within a few minutes; broker redelivery is not needed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts import metrics, quotas
from accounts.grants import mark_needs_signin
from accounts.log_context import log_ids
from accounts.models import MailboxConnection
from accounts.provider_registry import get_provider
from accounts.runs import claim_lease, release_lease, with_fresh_grant
from activities.conversations import join_conversations
from activities.email_search import search_text
from activities.models import Activity, EmailMessage
from activities.regarding import regarding_of
from activities.services import create_activity
from providers.base import Grant, MailProvider
from providers.errors import AuthRevoked, ProviderError, SendOutcomeUnknown, Throttled
from providers.http import retry_delay

from .mime import dedupe_key_for_message_id, reply_keys
from .models import OutboundEmail, SendQueue
from .outgoing import AttachmentFile, build_mime
from .retention import release_sent_attachments

log = logging.getLogger(__name__)

# One task run sends for at most this long, then hands over to a new task so other mailboxes'
# mail interleaves on the workers.
DRAIN_BUDGET_SECONDS = 55.0
# The pace's short gaps are slept through; a longer wait (Retry-After, a backoff) frees the worker.
MAX_INLINE_WAIT_SECONDS = 5.0
# A drain due further ahead than this is not handed to the broker as a countdown task: the sweep
# starts it when it is due (the broker's visibility timeout must exceed any countdown it holds).
MAX_COUNTDOWN = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 8
BUDGET_HOLD = "sending waits for the shared provider budgets"

WAITING_FOR_SIGNIN = (
    "Aspire's access to your mailbox has ended. This message will be sent after you reconnect your mailbox "
    "in Settings."
)
CHECKING = "Aspire could not confirm that this message was sent. It will check your Sent folder before trying again."


def send_lease() -> dt.timedelta:
    """A sender renews its lease before every message; a worker that dies mid-queue holds the
    mailbox this long at most. Longer than the slowest single send (a 25 MB upload)."""
    return dt.timedelta(seconds=settings.MAIL_SEND_LEASE_SECONDS)


def drain_lost_after() -> dt.timedelta:
    """A drain that should have started this long ago was lost with its worker (or waits behind a
    backlog): the sweep hands it to the broker again, at most this often."""
    return dt.timedelta(seconds=settings.MAIL_DRAIN_LOST_AFTER_SECONDS)


@dataclass(frozen=True)
class DrainResult:
    sent: int = 0
    busy: bool = False
    superseded: bool = False
    # When this mailbox's queue should be looked at again (mail waiting on a pace, a backoff or a
    # budget); None when nothing is left that this mailbox can send now.
    resume_at: dt.datetime | None = None


# -- asking for a drain -------------------------------------------------------------------------


def request_drain(connection_id: uuid.UUID, *, at: dt.datetime | None = None) -> bool:
    """Ask for the mailbox's queue to be drained at ``at`` (now by default). At most one drain is
    pending per mailbox: an earlier request stands, a later one is folded into it. Returns whether
    this request changed the pending drain. Call it outside a transaction, or on commit."""
    now = timezone.now()
    at = max(at or now, now)
    SendQueue.objects.get_or_create(connection_id=connection_id)
    changed = SendQueue.objects.filter(connection_id=connection_id).filter(
        Q(drain_at__isnull=True) | Q(drain_at__gt=at)
    ).update(drain_at=at, drain_generation=F("drain_generation") + 1, drain_enqueued_at=None)
    if changed:
        _hand_over(connection_id)
    return bool(changed)


def _hand_over(connection_id: uuid.UUID) -> None:
    """Give the pending drain to the broker, unless it is further ahead than a countdown may be."""
    from .send_tasks import send_queue  # the task module imports this one

    now = timezone.now()
    pending = SendQueue.objects.filter(connection_id=connection_id, drain_at__isnull=False).values_list(
        "drain_at", "drain_generation").first()
    if pending is None or pending[0] is None or pending[0] - now > MAX_COUNTDOWN:
        return
    drain_at, generation = pending
    assert drain_at is not None
    if SendQueue.objects.filter(connection_id=connection_id, drain_generation=generation).update(
            drain_enqueued_at=now):
        send_queue.apply_async((str(connection_id), generation),
                               countdown=max(0.0, (drain_at - now).total_seconds()))


def _take_drain(connection_id: uuid.UUID, generation: int) -> bool:
    """The pending drain, for the task that carries its generation (one task runs it)."""
    return bool(SendQueue.objects.filter(
        connection_id=connection_id, drain_generation=generation, drain_at__isnull=False,
    ).update(drain_at=None, drain_enqueued_at=None))


def sweep() -> int:
    """Every minute: start what the database says should be running. Mailboxes with queued mail
    whose wait is over and no drain pending; a message left "sending" by a sender whose lease
    lapsed (its worker died: the drain looks for it in the mailbox before sending again); and
    drains that should have started a while ago (their task was lost). Returns how many."""
    now = timezone.now()
    queues = SendQueue.objects.filter(connection_id=OuterRef("connection_id"))
    connected = Q(connection__state=MailboxConnection.State.CONNECTED)
    due = OutboundEmail.objects.filter(connected, state=OutboundEmail.State.QUEUED, not_before__lte=now).exclude(
        Exists(queues.filter(Q(drain_at__isnull=False) | Q(next_send_at__gt=now))))
    stuck = OutboundEmail.objects.filter(connected, state=OutboundEmail.State.SENDING).exclude(
        Exists(queues.filter(lease_until__gte=now)))
    wanted = set(due.values_list("connection_id", flat=True).distinct()) | set(
        stuck.values_list("connection_id", flat=True).distinct())
    for connection_id in wanted:
        request_drain(connection_id, at=now)
    lost_before = now - drain_lost_after()
    lost = SendQueue.objects.filter(
        Q(drain_at__lte=now, drain_enqueued_at__isnull=True)
        | Q(drain_at__lte=lost_before, drain_enqueued_at__lte=lost_before)
    ).values_list("connection_id", flat=True)
    lost_ids = set(lost) - wanted
    for connection_id in lost_ids:
        _hand_over(connection_id)
    return len(wanted) + len(lost_ids)


def has_queued_mail(connection_id: uuid.UUID) -> bool:
    return OutboundEmail.objects.filter(connection_id=connection_id, state=OutboundEmail.State.QUEUED).exists()


# -- sending ---------------------------------------------------------------------------------------


def send_interval(provider: str) -> dt.timedelta:
    per_minute = settings.MAIL_SEND_PER_MINUTE[provider]
    return dt.timedelta(seconds=60 / per_minute)


def drain_queue(*, connection_id: uuid.UUID | str, owner: str, generation: int | None = None,
                budget_seconds: float = DRAIN_BUDGET_SECONDS) -> DrainResult:
    """Send the mailbox's due mail, oldest first, at the mailbox's pace, for up to
    ``budget_seconds``, then ask for the next drain if mail is left. ``generation`` is the pending
    drain this run was handed (a superseded one returns at once); None runs regardless. Returns at
    once (``busy``) when another sender holds the mailbox: that one looks again when it ends."""
    connection = MailboxConnection.objects.get(pk=connection_id)
    if generation is not None and not _take_drain(connection.pk, generation):
        return DrainResult(superseded=True)
    if not claim_lease(SendQueue, connection.pk, owner, send_lease()):
        return DrainResult(busy=True)
    try:
        with log_ids(company_id=connection.company_id, connection_id=connection.pk):
            result = _drain(connection, owner, budget_seconds)
    finally:
        release_lease(SendQueue, connection.pk, owner)
    # After the lease is released, so mail queued meanwhile (whose own drain found us busy) is seen.
    resume_at = result.resume_at or OutboundEmail.objects.filter(
        connection=connection, state=OutboundEmail.State.QUEUED, connection__state=MailboxConnection.State.CONNECTED,
    ).order_by("not_before").values_list("not_before", flat=True).first()
    if resume_at is not None:
        request_drain(connection.pk, at=resume_at)
    return DrainResult(sent=result.sent, busy=result.busy, resume_at=resume_at)


def _drain(connection: MailboxConnection, owner: str, budget_seconds: float) -> DrainResult:
    started = time.monotonic()
    sent = 0
    # Left "sending" by a sender that died mid-send (we hold the lease, so nobody is sending it
    # now): it may have gone out.
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
        if not claim_lease(SendQueue, connection.pk, owner, send_lease()):  # renew; lost only if we overran it
            return DrainResult(sent=sent, busy=True)
        try:
            # The mailbox's budget is shared with capture and calendar, the application's with
            # every company: when spent, the whole queue waits for it; no message is touched.
            quotas.admit(connection=connection, sending=True)
        except Throttled as exc:
            log.info(BUDGET_HOLD, extra={"retry_after": exc.retry_after})
            SendQueue.objects.filter(pk=connection.pk).update(
                next_send_at=timezone.now() + dt.timedelta(seconds=exc.retry_after or 1))
            continue
        try:
            if _send_one(connection, outbound.pk, interval):
                sent += 1
        finally:
            # Gmail: a reply's thread lookup and a check of the Sent folder cost units beyond the send's.
            quotas.charge(connection=connection, requests=1)


def _wait_for_signin(connection: MailboxConnection) -> None:
    OutboundEmail.objects.filter(connection=connection, state=OutboundEmail.State.QUEUED).update(
        last_error=WAITING_FOR_SIGNIN
    )


def _attempt(provider: MailProvider, grant: Grant, outbound: OutboundEmail, connection: MailboxConnection) -> None:
    """Send the message, unless an earlier attempt may have sent it and it is in the mailbox."""
    if outbound.verify_before_send and provider.find_sent(grant, outbound.message_id):
        return
    provider.send_mime(grant, _mime_of(outbound, connection))


def _send_one(connection: MailboxConnection, outbound_id: uuid.UUID, interval: dt.timedelta) -> bool:
    """One attempt at one message; True when it is now sent. Its outcome is recorded on its row."""
    claimed = OutboundEmail.objects.filter(pk=outbound_id, state=OutboundEmail.State.QUEUED).update(
        state=OutboundEmail.State.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    outbound = OutboundEmail.objects.select_related("author").get(pk=outbound_id)
    provider = get_provider(connection.provider)
    # The order of these matters: each class is more specific than the ones after it, and the
    # last ProviderError branch reads the one axis (permanent: refused; otherwise: try again).
    try:
        # A refused access token is renewed once and the attempt made again (a 401 proves nothing
        # was sent); a second refusal comes out as a transient error.
        with_fresh_grant(connection.pk, lambda grant: _attempt(provider, grant, outbound, connection))
    except AuthRevoked as exc:
        now = timezone.now()  # waits run from the answer, as Retry-After does
        # fresh_grant has already put the connection in "needs sign-in" when the refresh failed;
        # a refusal on the send itself (permissions withdrawn) does it here.
        if MailboxConnection.objects.filter(pk=connection.pk, state=MailboxConnection.State.CONNECTED).exists():
            mark_needs_signin(connection_id=connection.pk, message=exc.user_message)
        _requeue(outbound, WAITING_FOR_SIGNIN, not_before=now)
        return False
    except SendOutcomeUnknown as exc:
        now = timezone.now()
        # It may have gone: look before sending again, once the provider has had time to file it.
        _pace(connection, interval)
        wait = max(float(settings.MAIL_SEND_VERIFY_DELAY_SECONDS), exc.retry_after or 0.0)
        _retry_or_fail(outbound, CHECKING, not_before=now + dt.timedelta(seconds=wait), verify=True)
        return False
    except Throttled as exc:
        now = timezone.now()
        metrics.throttled(provider=connection.provider, work="send", retry_after=exc.retry_after)
        # The whole mailbox is asked to wait, not only this message; without a Retry-After the
        # mailbox's own backoff grows with each throttle in a row.
        queue = SendQueue.objects.get(pk=connection.pk)
        resume = now + dt.timedelta(seconds=retry_delay(exc, queue.throttled_in_a_row))
        SendQueue.objects.filter(pk=connection.pk).update(
            next_send_at=resume, throttled_in_a_row=F("throttled_in_a_row") + 1)
        _retry_or_fail(outbound, exc.user_message, not_before=resume, verify=outbound.verify_before_send)
        return False
    except ProviderError as exc:
        now = timezone.now()
        if exc.permanent:
            _fail(outbound, "Your mail provider refused this message, so it was not sent. "
                            f"Check the addresses and attachments, then try again. ({exc.detail or exc})"[:1000])
        else:
            delay = dt.timedelta(seconds=retry_delay(exc, outbound.attempts - 1))
            _retry_or_fail(outbound, exc.user_message, not_before=now + delay, verify=outbound.verify_before_send)
        return False
    except Exception:
        now = timezone.now()
        # Our own bug: the message may or may not have gone; never resend it blindly.
        log.exception("sending %s failed", outbound_id)
        delay = dt.timedelta(seconds=retry_delay(None, outbound.attempts - 1))
        _requeue(outbound, CHECKING, not_before=now + delay, verify=True)
        raise
    _pace(connection, interval)
    _mark_sent(outbound)
    log.info("message sent", extra={"outbound_id": str(outbound.pk), "attempts": outbound.attempts})
    return True


def _pace(connection: MailboxConnection, interval: dt.timedelta) -> None:
    # Counted from when the send finished: the provider counts a message when the request
    # arrives, which is before our answer, so this spacing holds at the provider too.
    SendQueue.objects.filter(pk=connection.pk).update(next_send_at=timezone.now() + interval, throttled_in_a_row=0)


def _requeue(outbound: OutboundEmail, reason: str, *, not_before: dt.datetime, verify: bool | None = None) -> None:
    changes: dict[str, object] = {"state": OutboundEmail.State.QUEUED, "last_error": reason, "not_before": not_before}
    if verify is not None:
        changes["verify_before_send"] = verify
    OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.SENDING).update(**changes)


def _retry_or_fail(outbound: OutboundEmail, reason: str, *, not_before: dt.datetime, verify: bool) -> None:
    if outbound.attempts >= MAX_ATTEMPTS:
        # A Retry later still looks in the mailbox first if this attempt may have sent it.
        OutboundEmail.objects.filter(pk=outbound.pk).update(verify_before_send=verify)
        _fail(outbound, f"Aspire tried {outbound.attempts} times and could not send this message. {reason}")
        return
    _requeue(outbound, reason, not_before=not_before, verify=verify)


def _fail(outbound: OutboundEmail, reason: str) -> None:
    failed = OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.SENDING).update(
        state=OutboundEmail.State.FAILED, last_error=reason
    )
    if failed:
        provider = MailboxConnection.objects.values_list("provider", flat=True).get(pk=outbound.connection_id)
        metrics.SENDS.labels(provider=provider, outcome="failed").inc()


def _mime_of(outbound: OutboundEmail, connection: MailboxConnection) -> bytes:
    attachments = []
    for stored in outbound.attachments.all():
        with stored.file.open("rb") as handle:
            attachments.append(AttachmentFile(stored.filename, stored.content_type, handle.read()))
    return build_mime(
        from_address=connection.mailbox_address, from_name=connection.display_name or str(outbound.author),
        to=outbound.to, cc=outbound.cc, subject=outbound.subject, body=outbound.body, html_body=outbound.html_body,
        message_id=outbound.message_id, date=outbound.created_at, in_reply_to=outbound.in_reply_to,
        references=outbound.references.split(), attachments=attachments,
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
    metrics.SENDS.labels(provider=sent.connection.provider, outcome="sent").inc()
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
            contacts=sent.contacts.all(), regarding=regarding_of(sent),
        )
        # A reply written in Aspire joins the conversation it answers; other mail written here starts
        # one, whose replies can follow it into Aspire.
        conversation_id = join_conversations(sent.company_id, {
            dedupe_key: (reply_keys(sent.in_reply_to, sent.references.split()), sent_at)})[dedupe_key]
        EmailMessage.objects.create(
            activity=activity, company_id=sent.company_id, dedupe_key=dedupe_key, conversation_id=conversation_id,
            message_id=sent.message_id, in_reply_to=sent.in_reply_to, references=sent.references,
            from_name=sent.connection.display_name, from_address=sent.connection.mailbox_address,
            to=[["", address] for address in sent.to], cc=[["", address] for address in sent.cc],
            text_body=sent.body, html_body=sent.html_body, has_attachment=sent.attachments.exists(),
            search_text=search_text(subject=sent.subject, from_name=sent.connection.display_name,
                                    from_address=sent.connection.mailbox_address,
                                    attachment_names=sent.attachments.values_list("filename", flat=True),
                                    body=sent.body),
        )
    OutboundEmail.objects.filter(pk=sent.pk).update(activity=activity)
    # The provider has the message: its attachments' files are not needed any more (the hourly
    # sweep releases them should this worker die before the commit's callbacks run).
    transaction.on_commit(lambda: release_sent_attachments(outbound_ids=[sent.pk]))
