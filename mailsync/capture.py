"""The Aspire → Processed capture pipeline.

A run lists the Aspire folder a page at a time, fetches each new message's MIME, and commits the
whole page in one transaction (Activities, their emails, contacts, sources and attachments, with a
fixed number of queries whatever the page size). Only then does it move the page to Processed.
A crash between the commit and the move leaves the messages in Aspire; the next run finds their
sources (unique per mailbox and message) and only moves them. Nothing is lost, nothing is twice.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts import metrics
from accounts.models import MailboxConnection, SyncRun
from accounts.moments import moment
from accounts.provider_registry import get_provider
from accounts.push import ensure_mail_channels
from accounts.runs import RunCounts, record_run, renew_run_lease
from activities.conversations import Followed, join_conversations
from activities.email_search import search_text
from activities.models import Activity, ActivityContact, EmailAttachment, EmailMessage, attachment_path
from crm.models import ContactEmail
from providers.base import Grant, MailProvider, MessageRef
from providers.errors import NotFound, ProviderError, Throttled

from .mime import ParsedEmail, UnparseableMessage, parse_message, reply_keys
from .models import EmailSource, MailSyncState

log = logging.getLogger(__name__)

FOLDERS = ("Aspire", "Processed")
PAGE_SIZE = 50
FOLDER_CHECK_INTERVAL = dt.timedelta(days=1)
# A page that makes no progress (every message failed) ends the run rather than spin.
MAX_PAGES_PER_RUN = 400
# MIME requests in flight per run. Fetching is network wait, parsing and committing are CPU: with a
# few fetches running ahead, the worker parses one message while the next ones download. Graph
# allows 4 concurrent requests per mailbox and answers a fifth with 429; listing and moving never
# overlap the fetches, so 3 leaves one slot for anything else touching the mailbox (sending).
FETCH_CONCURRENCY = 3
# Moves throttled with a Retry-After this short are tried again within the run, a few times.
MOVE_RETRY_WAIT_SECONDS = 5.0
MOVE_ROUNDS = 6


@dataclass
class Captured:
    """One fetched message on its way into the database."""

    ref: MessageRef
    parsed: ParsedEmail
    spool: Path
    # Attachment spool file -> its name in storage, once moved there (a retried commit reuses it).
    stored: dict[Path, str] = field(default_factory=dict)


class _SpoolFile(File):  # type: ignore[type-arg]
    """A spool file handed to storage to take as it is: a file-system storage moves it into place
    (one rename on the same disk) instead of writing the attachment a second time."""

    def temporary_file_path(self) -> str:
        return str(self.name)


# -- a run -----------------------------------------------------------------------------------


def run_capture(
    *, connection_id: uuid.UUID | str, owner: str, trigger: str = SyncRun.Trigger.SCHEDULE
) -> SyncRun | None:
    """Capture everything now in the connection's Aspire folder, and follow conversations. Returns
    None when the connection no longer reads mail (disconnected, or the settings turned off since
    the run was queued: ``MailboxConnection.reads_mail``).
    Raises RunBusy when another run holds the connection, and provider errors after recording them
    (what was committed stays, and the next run resumes)."""
    connection = MailboxConnection.objects.select_related("user__company").get(pk=connection_id)
    if not (connection.is_connected and connection.reads_mail):
        return None
    return record_run(connection=connection, kind=SyncRun.Kind.MAIL, trigger=trigger, state_model=MailSyncState,
                      owner=owner,
                      work=lambda grant, counts, state: _capture(connection, grant, counts, owner, state))


def _capture(connection: MailboxConnection, grant: Grant, counts: RunCounts, owner: str,
             state: MailSyncState) -> None:
    state.connection = connection  # the run's own, its user loaded: what the state's notices need
    started = timezone.now()
    provider = get_provider(connection.provider)
    # Following alone (Sync Email on, Sync Aspire Folder off) makes no folders and lists none.
    aspire_folder = connection.sync_aspire_folder
    if aspire_folder and (not state.aspire_folder_id or not state.processed_folder_id or _folder_check_due(state)):
        _ensure_folders(provider, grant, state, counts=counts)
    # Push before listing, so whatever arrives while this run lists is announced; channels no
    # longer wanted (following or the Aspire folder turned off) are stopped.
    counts.requests += ensure_mail_channels(connection=connection, grant=grant,
                                            aspire_folder_id=state.aspire_folder_id if aspire_folder else "")
    if aspire_folder:
        _capture_aspire_folder(connection, provider, grant, state, counts, owner)
    if connection.user.follows_conversations:
        from .follow import follow_conversations

        follow_conversations(connection, provider, grant, counts, owner, run_started=started)


def _capture_aspire_folder(connection: MailboxConnection, provider: MailProvider, grant: Grant,
                           state: MailSyncState, counts: RunCounts, owner: str) -> None:
    spool_root = Path(settings.MAIL_SPOOL_DIR)
    spool_root.mkdir(parents=True, exist_ok=True)
    for _ in range(MAX_PAGES_PER_RUN):
        try:
            page = provider.list_folder(grant, state.aspire_folder_id, page_size=PAGE_SIZE)
        except NotFound:
            _ensure_folders(provider, grant, state, missing=True, counts=counts)
            page = provider.list_folder(grant, state.aspire_folder_id, page_size=PAGE_SIZE)
        if not page.messages:
            return
        counts.seen += len(page.messages)
        with tempfile.TemporaryDirectory(dir=spool_root) as spool:
            to_move = _capture_page(connection, provider, grant, page.messages, Path(spool), counts)
        if not to_move:
            return  # nothing on this page could be taken in; the next run tries again
        _move(provider, grant, state, to_move, counts)
        renew_run_lease(MailSyncState, connection.pk, owner)


def _folder_check_due(state: MailSyncState) -> bool:
    # Once a day, check the folders still exist under their names: an idle hourly run makes one
    # request only, so a renamed folder is noticed within a day (a deleted one at once).
    return state.folders_checked_at is None or timezone.now() - state.folders_checked_at > FOLDER_CHECK_INTERVAL


def _ensure_folders(provider: MailProvider, grant: Grant, state: MailSyncState, *, missing: bool = False,
                    counts: RunCounts | None = None) -> None:
    had_folders = bool(state.aspire_folder_id and state.processed_folder_id)
    ids = provider.ensure_folders(grant, FOLDERS)
    changed = (ids["Aspire"], ids["Processed"]) != (state.aspire_folder_id, state.processed_folder_id)
    state.aspire_folder_id, state.processed_folder_id = ids["Aspire"], ids["Processed"]
    state.folders_checked_at = timezone.now()
    if had_folders and (changed or missing):
        when = moment(state.folders_checked_at, state.connection.user.zone)
        state.folder_notice = (
            f"The Aspire or Processed folder was missing from your mailbox (deleted or renamed?), "
            f"so Aspire created it again on {when}."
        )
        if counts is not None:
            counts.problems.append(state.folder_notice)
    state.save(update_fields=["aspire_folder_id", "processed_folder_id", "folder_notice", "folders_checked_at"])


def _capture_page(
    connection: MailboxConnection,
    provider: MailProvider,
    grant: Grant,
    refs: Iterable[MessageRef],
    spool: Path,
    counts: RunCounts,
) -> list[str]:
    """Fetch and commit one page; returns the provider ids now safe to move to Processed."""
    refs = list(refs)
    known = set(
        EmailSource.objects.filter(connection=connection, provider_message_id__in=[r.id for r in refs]).values_list(
            "provider_message_id", flat=True
        )
    )
    ready: list[str] = [r.id for r in refs if r.id in known]
    counts.already_there += len(ready)
    fetched: list[Captured] = []
    stopped: Throttled | None = None
    wanted = [r for r in refs if r.id not in known]
    with closing(fetch_mimes(provider, grant, [r.id for r in wanted])) as downloads:
        for ref, (_, raw) in zip(wanted, downloads, strict=False):
            if isinstance(raw, NotFound):
                continue  # the user deleted or moved it while we ran: nothing to capture, nothing to move
            if isinstance(raw, Throttled):
                # A quota (Gmail's 250 units a second per user) stops a fast run at the same point
                # of every page: a page of 50 fetches costs more than a second's units. Keep what
                # this page has fetched so far, or the retry would fetch it again and stop there again.
                stopped = raw
                break
            if isinstance(raw, ProviderError):
                raise raw  # anything else: nothing of the page is committed, the retry starts it over
            captured = _parse(ref, raw, spool, counts)
            del raw
            if captured is not None:
                fetched.append(captured)
    if fetched:
        # Two mailboxes of one company capturing the same email at the same moment: the loser of
        # the race retries once and then finds the winner's email.
        for attempt in range(3):
            try:
                counts.imported += _commit_page(connection, fetched)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        ready.extend(c.ref.id for c in fetched)
    if stopped is not None:
        # Committed, not moved: the provider asked us to wait, and the next run moves them first.
        raise stopped
    return ready


def fetch_mimes(
    provider: MailProvider, grant: Grant, message_ids: Sequence[str]
) -> Generator[tuple[str, bytes | ProviderError], None, None]:
    """Each message's MIME (or the provider's error for it), in order, with up to
    FETCH_CONCURRENCY requests in flight. Fetches run ahead of the caller by that many messages
    only, so a page of large messages is not all held in memory at once. Closing the iterator
    early cancels the fetches not yet started."""
    upcoming = iter(message_ids)
    pending: deque[tuple[str, Future[bytes]]] = deque()
    with ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY, thread_name_prefix="fetch-mime") as pool:

        def top_up() -> None:
            while len(pending) < FETCH_CONCURRENCY:
                message_id = next(upcoming, None)
                if message_id is None:
                    return
                # In a copy of this context: the fetch is metered with the run (providers.google.quota).
                pending.append((message_id, pool.submit(contextvars.copy_context().run, provider.fetch_mime, grant,
                                                        message_id)))

        try:
            top_up()
            while pending:
                message_id, future = pending.popleft()
                try:
                    outcome: bytes | ProviderError = future.result()
                except ProviderError as exc:
                    outcome = exc
                top_up()  # before handing this one over, so the next downloads overlap its parsing
                yield message_id, outcome
                del outcome
        finally:
            for _, future in pending:
                future.cancel()


def _parse(ref: MessageRef, raw: bytes, spool: Path, counts: RunCounts) -> Captured | None:
    # One spool directory for the page: the parser gives every attachment a file name of its own,
    # and a directory per message cost a mkdir and an rmdir each, about a tenth of a run's time.
    try:
        # Parts over the limit are left out by the parser, with a note the email page shows.
        parsed = parse_message(raw, spool_dir=spool, max_attachment_bytes=settings.MAX_ATTACHMENT_BYTES)
    except UnparseableMessage as exc:
        counts.failed += 1
        counts.problems.append(f"A message could not be read ({exc}); it stays in your Aspire folder.")
        return None
    return Captured(ref=ref, parsed=parsed, spool=spool)


@transaction.atomic
def _commit_page(connection: MailboxConnection, fetched: list[Captured],
                 follow: Mapping[str, Followed] | None = None) -> int:
    """Store a page of messages with a fixed number of queries. Returns how many new Activities.

    With ``follow`` (dedupe key -> its followed conversation) the page is later mail of
    conversations in Aspire: captured automatically, onto the conversation's contacts and
    Regarding. Otherwise each email joins the conversation of an email it replies to, or starts one."""
    company_id = connection.company_id
    by_key: dict[str, Captured] = {}
    for item in fetched:
        by_key.setdefault(item.parsed.dedupe_key(), item)
    existing = dict(
        EmailMessage.objects.filter(company_id=company_id, dedupe_key__in=list(by_key)).values_list(
            "dedupe_key", "activity_id"
        )
    )
    addresses = {address for item in by_key.values() for address in item.parsed.participants()}
    contacts_by_address: dict[str, set[uuid.UUID]] = {}
    for address, contact_id in (
        ContactEmail.objects.annotate(address_lower=Lower("address"))
        .filter(company_id=company_id, address_lower__in=addresses)
        .values_list("address_lower", "contact_id")
    ):
        contacts_by_address.setdefault(address, set()).add(contact_id)

    new_items = [(key, item) for key, item in by_key.items() if key not in existing]
    contacts_of = {
        key: set().union(*(contacts_by_address.get(a, set()) for a in item.parsed.participants()))
        for key, item in new_items
    }
    conversation_of: dict[str, uuid.UUID] = {}
    if follow is not None:
        for key, _ in new_items:
            contacts_of[key] |= follow[key].contact_ids
            conversation_of[key] = follow[key].conversation_id
    else:
        conversation_of = join_conversations(company_id, {
            key: (reply_keys(item.parsed.in_reply_to, item.parsed.references), item.parsed.date or timezone.now())
            for key, item in new_items})
    activities = [
        Activity(
            company_id=company_id,
            kind=Activity.Kind.EMAIL,
            origin=Activity.Origin.FOLLOWED if follow is not None else Activity.Origin.CAPTURED,
            **(dict(follow[key].regarding) if follow is not None else {}),
            occurred_at=item.parsed.date or timezone.now(),
            subject=item.parsed.subject[:998],
            body=item.parsed.text_body,
            owner_id=connection.user_id,
            # What activities.services.refresh_contact_links would set, written here in bulk.
            filed=bool(contacts_of[key]),
        )
        for key, item in new_items
    ]
    Activity.objects.bulk_create(activities)
    emails: list[EmailMessage] = []
    links: list[Any] = []
    attachments: list[EmailAttachment] = []
    for activity, (key, item) in zip(activities, new_items, strict=True):
        existing[key] = activity.pk
        parsed = item.parsed
        emails.append(
            EmailMessage(
                activity=activity,
                company_id=company_id,
                dedupe_key=key,
                message_id=parsed.message_id[:998],
                in_reply_to=parsed.in_reply_to[:998],
                references=" ".join(parsed.references),
                from_name=parsed.from_.name[:300] if parsed.from_ else "",
                from_address=parsed.from_.email[:320] if parsed.from_ else "",
                to=[[a.name, a.email] for a in parsed.to],
                cc=[[a.name, a.email] for a in parsed.cc],
                reply_to=[[a.name, a.email] for a in parsed.reply_to],
                text_body=parsed.text_body,
                html_body=parsed.html_body,
                search_text=search_text(
                    subject=activity.subject, from_name=parsed.from_.name if parsed.from_ else "",
                    from_address=parsed.from_.email if parsed.from_ else "",
                    attachment_names=[a.filename for a in parsed.attachments], body=parsed.text_body),
                size=parsed.size,
                problems="\n".join(parsed.problems),
                conversation_id=conversation_of.get(key),
            )
        )
        links.extend(ActivityContact(activity_id=activity.pk, contact_id=c, occurred_at=activity.occurred_at)
                     for c in contacts_of[key])
        attachments.extend(_store_attachments(activity, company_id, item))
    EmailMessage.objects.bulk_create(emails)
    ActivityContact.objects.bulk_create(links)
    EmailAttachment.objects.bulk_create(attachments)
    EmailSource.objects.bulk_create(
        [
            EmailSource(activity_id=existing[item.parsed.dedupe_key()], connection=connection,
                        provider_message_id=item.ref.id)
            for item in fetched
        ],
        ignore_conflicts=True,
    )
    return len(new_items)


def _store_attachments(activity: Activity, company_id: uuid.UUID, item: Captured) -> list[EmailAttachment]:
    stored = []
    for part in item.parsed.attachments:
        attachment = EmailAttachment(
            email_id=activity.pk,
            company_id=company_id,
            filename=part.filename[:255],
            content_type=part.content_type[:255],
            size=part.size,
            content_id=part.content_id[:255],
            inline=part.inline,
            sha256=part.sha256,
        )
        if part.path not in item.stored:
            with part.path.open("rb") as handle:
                item.stored[part.path] = default_storage.save(attachment_path(attachment, part.filename),
                                                              _SpoolFile(handle, name=str(part.path)))
        attachment.file.name = item.stored[part.path]
        stored.append(attachment)
    return stored


def _move(provider: MailProvider, grant: Grant, state: MailSyncState, ids: list[str], counts: RunCounts) -> None:
    results: dict[str, ProviderError | None] = {}
    pending = tuple(ids)
    for round_ in range(MOVE_ROUNDS):
        try:
            results.update(provider.move_messages(
                grant, pending, source_folder_id=state.aspire_folder_id, target_folder_id=state.processed_folder_id
            ))
        except NotFound:
            # Processed was deleted: make it again and move there.
            _ensure_folders(provider, grant, state, missing=True, counts=counts)
            results.update(provider.move_messages(
                grant, pending, source_folder_id=state.aspire_folder_id, target_folder_id=state.processed_folder_id
            ))
        # Moves throttled one by one (the steps of a Graph batch over the mailbox's concurrency
        # limit) are tried again after the longest Retry-After, when it is short, as Graph asks.
        # Reference: https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
        throttled = [error for error in results.values() if isinstance(error, Throttled)]
        # A throttle that names no wait is left to the task's backoff.
        wait = max((float("inf") if error.retry_after is None else error.retry_after for error in throttled),
                   default=0.0)
        if not throttled or wait > MOVE_RETRY_WAIT_SECONDS or round_ == MOVE_ROUNDS - 1:
            break
        # Throttles waited out here never reach the run recorder, which counts those that stop a run.
        for error in throttled:
            metrics.throttled(provider=provider.kind, work=SyncRun.Kind.MAIL, retry_after=error.retry_after)
        time.sleep(wait)
        pending = tuple(message_id for message_id, error in results.items() if isinstance(error, Throttled))
    retryable = [error for error in results.values() if error is not None and not error.permanent]
    if retryable:
        # Captured and committed already: the retry (soon, with backoff) only moves them.
        raise retryable[0]
    failures = [error for error in results.values() if error is not None]
    if failures:
        counts.problems.append(f"{len(failures)} message(s) could not be moved to Processed yet.")
