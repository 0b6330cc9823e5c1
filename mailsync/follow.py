"""Following conversations: later mail of a conversation already in Aspire is captured on its own.

Part of the mail run (``mailsync.capture``), under its lease and record, for users who follow
conversations (``User.follows_conversations``). Each of the provider's
``follow_folders`` is read from its cursor (Graph: a delta link each for Inbox and Sent Items;
Gmail: the history id), so an idle run costs one request per folder. A message belongs to a
conversation in Aspire when its In-Reply-To / References name an email of the company there, or
when the provider puts it in a thread (conversationId, threadId) such an email is in. It is then
fetched and committed by the capture pipeline (one Activity per real email, a source per mailbox)
onto the conversation's contacts and Regarding, and left where it is: the user did not drag it.

Never captured automatically: mail whose every participant is a colleague, mail with any
participant on the company's never-capture list, mail older than the conversation's first
message in Aspire, mail of a conversation someone stopped following.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import MailboxConnection, User
from accounts.runs import RunCounts, renew_run_lease
from activities.conversations import Followed, followed
from providers.base import Grant, MailChange, MailChanges, MailProvider, MessageRef
from providers.errors import NotFound, ProviderError, SyncStateExpired, Throttled

from .capture import Captured, _commit_page, _parse, fetch_mimes
from .mime import ParsedEmail, dedupe_key_for_message_id, reply_keys
from .models import EmailSource, MailSyncState, NeverCapture, ProviderThread

# A folder's listing pages per run: an idle folder takes one; a first or expired listing is cut
# here and goes on from where it stopped at the next run.
MAX_PAGES = 10
# After an expired cursor, mail since the last complete read is listed again, up to this far back.
RELIST_WINDOW = dt.timedelta(days=7)
# Messages fetched per commit.
BATCH = 50
# Dates come from different clocks (the sender's, ours) and Date headers count whole seconds: a
# reply is "older than the conversation" only by more than this.
CLOCK_SKEW = dt.timedelta(minutes=5)


def follow_conversations(connection: MailboxConnection, provider: MailProvider, grant: Grant,
                         counts: RunCounts, owner: str, *, run_started: dt.datetime) -> None:
    """``run_started``: when the run began. A folder read for the first time is read from then
    (less the clock allowance), so mail that came in while the run captured the Aspire folder,
    replies to what it captured among it, is not skipped."""
    state = MailSyncState.objects.get(connection=connection)
    cursors = dict(state.follow_cursors)
    for folder in provider.follow_folders:
        changes = _read(provider, grant, folder, cursors, counts, run_started)
        _take(connection, provider, grant, changes.added, counts)
        cursors[folder] = changes.cursor
        if changes.complete:
            cursors[f"{folder}@"] = timezone.now().isoformat()
        # Saved per folder: a run cut off later does not read this folder's changes again.
        MailSyncState.objects.filter(pk=state.pk).update(follow_cursors=cursors)
        renew_run_lease(MailSyncState, connection.pk, owner)


def _read(provider: MailProvider, grant: Grant, folder: str, cursors: dict[str, str],
          counts: RunCounts, run_started: dt.datetime) -> MailChanges:
    read_at = cursors.get(f"{folder}@")
    since = max(dt.datetime.fromisoformat(read_at) if read_at else run_started,
                timezone.now() - RELIST_WINDOW) - dt.timedelta(minutes=5)
    try:
        changes = provider.list_changes(grant, folder, cursor=cursors.get(folder, ""), since=since,
                                        max_pages=MAX_PAGES)
    except SyncStateExpired:
        # Listed again from the last complete read; what is already in Aspire is recognised by
        # its source and its Message-ID, so nothing is captured twice.
        changes = provider.relist(grant, folder, since=since, max_pages=MAX_PAGES)
    counts.requests += changes.requests
    return changes


def _take(connection: MailboxConnection, provider: MailProvider, grant: Grant, changes: Iterable[MailChange],
          counts: RunCounts) -> None:
    company_id = connection.company_id
    fresh = list({change.id: change for change in changes}.values())
    if not fresh:
        return
    known_sources = set(EmailSource.objects.filter(
        connection=connection, provider_message_id__in=[c.id for c in fresh]).values_list("provider_message_id",
                                                                                           flat=True))
    fresh = [c for c in fresh if c.id not in known_sources]
    own_key = {c.id: dedupe_key_for_message_id(c.internet_message_id) for c in fresh}
    replies = {c.id: reply_keys(c.in_reply_to, c.references) for c in fresh}
    from activities.models import EmailMessage

    in_aspire = {key: (activity_id, conversation_id) for key, activity_id, conversation_id in
                 EmailMessage.objects.filter(
                     company_id=company_id,
                     dedupe_key__in={k for c in fresh for k in (own_key[c.id], *replies[c.id]) if k},
                 ).values_list("dedupe_key", "activity_id", "conversation_id")}
    threads = dict(ProviderThread.objects.filter(
        connection=connection, thread_id__in={c.thread_id for c in fresh if c.thread_id}).values_list(
        "thread_id", "conversation_id"))

    learnt: dict[str, uuid.UUID] = {}
    sources: list[EmailSource] = []
    wanted: dict[str, tuple[MailChange, uuid.UUID]] = {}
    for change in fresh:
        here = in_aspire.get(own_key[change.id])
        if here is not None:
            # Already in Aspire (sent from Aspire, dragged from another mailbox): one more source,
            # and its thread in this mailbox is now known.
            activity_id, known_conversation = here
            sources.append(EmailSource(activity_id=activity_id, connection=connection,
                                       provider_message_id=change.id))
            if known_conversation and change.thread_id:
                learnt[change.thread_id] = known_conversation
            counts.already_there += 1
            continue
        joins = next((in_aspire[k][1] for k in replies[change.id] if k in in_aspire and in_aspire[k][1]),
                     None) or threads.get(change.thread_id)
        if joins is not None:
            wanted[change.id] = (change, joins)
    live = followed(company_id, {conversation_id for _, conversation_id in wanted.values()})
    with transaction.atomic():
        EmailSource.objects.bulk_create(sources, ignore_conflicts=True)
        _remember_threads(connection, learnt)
    # A conversation on no contact is not followed: its later mail would be on no timeline.
    chosen = [(change, live[conversation_id]) for change, conversation_id in wanted.values()
              if conversation_id in live and live[conversation_id].contact_ids]
    if not chosen:
        return
    privacy = _Privacy(connection.company_id)
    spool_root = Path(settings.MAIL_SPOOL_DIR)
    spool_root.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start:start + BATCH]
        with tempfile.TemporaryDirectory(dir=spool_root) as spool:
            _capture_batch(connection, provider, grant, batch, Path(spool), privacy, counts)


def _capture_batch(connection: MailboxConnection, provider: MailProvider, grant: Grant,
                   batch: list[tuple[MailChange, Followed]], spool: Path, privacy: _Privacy,
                   counts: RunCounts) -> None:
    plan_of = {change.id: plan for change, plan in batch}
    fetched: list[Captured] = []
    follow: dict[str, Followed] = {}
    stopped: ProviderError | None = None
    with closing(fetch_mimes(provider, grant, [change.id for change, _ in batch])) as downloads:
        for message_id, raw in downloads:
            if isinstance(raw, NotFound):
                continue  # deleted since it arrived
            if isinstance(raw, ProviderError):
                stopped = raw
                break
            counts.seen += 1
            captured = _parse(MessageRef(id=message_id), raw, spool, counts)
            if captured is None:
                continue
            plan = plan_of[message_id]
            if not privacy.allows(captured.parsed, since=plan.started_at):
                continue
            fetched.append(captured)
            follow[captured.parsed.dedupe_key()] = plan
    if fetched:
        counts.imported += _commit_page(connection, fetched, follow)
        _remember_threads(connection, {change.thread_id: plan.conversation_id
                                       for change, plan in batch if change.thread_id})
    if stopped is not None:
        if isinstance(stopped, Throttled) or not stopped.permanent:
            raise stopped  # what was committed stays; the cursor is not moved past the rest
        counts.problems.append("A reply could not be captured automatically.")


def _remember_threads(connection: MailboxConnection, learnt: dict[str, uuid.UUID]) -> None:
    ProviderThread.objects.bulk_create(
        [ProviderThread(connection=connection, thread_id=thread_id[:500], conversation_id=conversation_id)
         for thread_id, conversation_id in learnt.items()],
        ignore_conflicts=True,
    )


class _Privacy:
    """What the company never captures automatically: mail among colleagues only, and mail with
    anyone on its never-capture list (an address, or a whole domain)."""

    def __init__(self, company_id: uuid.UUID) -> None:
        self.colleagues = {address.lower() for address in User.objects.filter(company_id=company_id).values_list(
            "email", flat=True)} | {address.lower() for address in MailboxConnection.objects.filter(
                company_id=company_id).values_list("mailbox_address", flat=True)}
        self.blocked = {entry.lower() for entry in NeverCapture.objects.filter(company_id=company_id).values_list(
            "entry", flat=True)}

    def allows(self, parsed: ParsedEmail, *, since: dt.datetime) -> bool:
        if parsed.date is not None and parsed.date < since - CLOCK_SKEW:
            return False
        participants = parsed.participants()
        if not participants or participants <= self.colleagues:
            return False
        return not any(address in self.blocked or address.rpartition("@")[2] in self.blocked
                       for address in participants)

