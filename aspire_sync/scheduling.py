"""Which connections sync when. Every connection syncs at least hourly, at its own minute of the
hour so the load is spread; "Sync now" and provider push notifications make it due at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun
from accounts.runs import interrupted, lapsed_leases
from accounts.signals import sync_requested
from aspire_sync.celery import app
from calendarsync.tasks import sync_calendar
from mailsync.tasks import capture_mailbox

# Connections claimed and published per page (one transaction, one producer).
BATCH = 1000
# A dispatch task pages for about this long, then hands the rest to a new one (beat's tick is a minute).
DISPATCH_BUDGET_SECONDS = 45.0
DISPATCH_TASK = "sync.dispatch_due"
SYNC_INTERVAL = dt.timedelta(hours=1)


def spread_offset(connection_id: object) -> dt.timedelta:
    """A stable minute-of-the-hour per connection, so hourly syncs spread over the hour."""
    digest = hashlib.sha256(str(connection_id).encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:4], "big") % 3600)


def next_hourly_sync(connection: MailboxConnection, after: dt.datetime) -> dt.datetime:
    hour = after.replace(minute=0, second=0, microsecond=0)
    candidate = hour + spread_offset(connection.pk)
    return candidate if candidate > after else candidate + SYNC_INTERVAL


def dispatch_due(*, trigger: str = "schedule", batch: int = BATCH,
                 budget: float = DISPATCH_BUDGET_SECONDS) -> int:
    """Claim the connections that are due and enqueue their syncs, a page at a time until none is
    due, then pick up the runs a killed worker left unfinished. The beat tick only publishes this
    as a task, so it never waits for a backlog; a backlog that takes longer than ``budget`` is
    handed on to a fresh dispatch task, so no one task runs into its time limit."""
    started = time.monotonic()
    dispatched = 0
    while True:
        claimed = claim_due_page(trigger=trigger, batch=batch)
        dispatched += claimed
        if claimed == 0:
            break
        if time.monotonic() - started > budget:
            app.send_task(DISPATCH_TASK, kwargs={"trigger": trigger}, queue="default")
            break
    return dispatched + recover_interrupted()


def claim_due_page(*, trigger: str, batch: int = BATCH) -> int:
    """Claim up to ``batch`` due connections and publish their syncs. Companies take turns: each
    company's most overdue connection first, then each one's second, and so on, so a large
    company's backlog never holds up a small company's hourly run. Claiming moves each one's next
    sync an hour on in the same transaction (rows locked with SKIP LOCKED), so two dispatchers
    never enqueue the same connection twice; the lease each run takes keeps a connection enqueued
    twice anyway (a "Sync now" during its run) from running twice at once."""
    now = timezone.now()
    due = MailboxConnection.objects.filter(state=MailboxConnection.State.CONNECTED, next_sync_at__lte=now)
    turns = (due.annotate(turn=Window(RowNumber(), partition_by=[F("company_id")], order_by=F("next_sync_at").asc()))
             .order_by("turn", "next_sync_at").values_list("pk", flat=True)[:batch])
    with transaction.atomic():
        order = {pk: position for position, pk in enumerate(turns)}
        claimed = sorted(
            due.select_for_update(skip_locked=True).filter(pk__in=list(order))
            .values_list("pk", "sync_email", "sync_calendar"),
            key=lambda row: order[row[0]],
        )
        _move_on(MailboxConnection, {pk: next_hourly_sync(MailboxConnection(pk=pk), now) for pk, *_ in claimed})
        # With Sync Email on, the mail run decides whether it has work (the Aspire folder, or
        # following conversations: MailboxConnection.reads_mail) and ends at once when it has none.
        jobs = list(claimed)
        transaction.on_commit(lambda: _enqueue(jobs, trigger))
    return len(claimed)


def _move_on(model: Any, next_sync: dict[uuid.UUID, dt.datetime]) -> None:
    """Set each claimed connection's next sync in one statement. (bulk_update writes a CASE with a
    branch per row, which for a page of 1,000 costs seconds to build and to run.)"""
    if not next_sync:
        return
    if db.vendor != "postgresql":
        # SQLite (the demo's database, and the suite's default) has no arrays to unnest; a demo's
        # page is a handful of rows, for which bulk_update's CASE is quick.
        model.objects.bulk_update([model(pk=pk, next_sync_at=at) for pk, at in next_sync.items()], ["next_sync_at"])
        return
    table, key = model._meta.db_table, model._meta.pk.column
    with db.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" AS c SET next_sync_at = v.next_sync_at '  # noqa: S608 (our own table names)
            f'FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(id, next_sync_at) WHERE c."{key}" = v.id',
            [list(next_sync), list(next_sync.values())],
        )


def recover_interrupted() -> int:
    """Runs whose lease lapsed without being released were cut off (their worker was killed, or
    lost the database): close their records and run them again now, rather than wait for the
    broker to redeliver the task (an hour later, with Redis) or for the next hourly run. A lease
    lapses two minutes after its last renewal, so such work resumes within about three."""
    from calendarsync.models import CalendarSyncState
    from mailsync.models import MailSyncState

    recovered = 0
    for state_model, kind, task in ((MailSyncState, SyncRun.Kind.MAIL, capture_mailbox),
                                    (CalendarSyncState, SyncRun.Kind.CALENDAR, sync_calendar)):
        for connection_id in lapsed_leases(state_model):
            interrupted(connection_id=connection_id, kind=kind)
            if MailboxConnection.objects.filter(pk=connection_id, state=MailboxConnection.State.CONNECTED).exists():
                task.delay(str(connection_id), SyncRun.Trigger.SCHEDULE)
                recovered += 1
    return recovered


def _enqueue(jobs: list[tuple[uuid.UUID, bool, bool]], trigger: str) -> None:
    """Publish a page of syncs over one broker connection and one producer, in a batch: with Redis,
    kombu sends the page's messages down one pipeline rather than one round trip each (other
    transports publish each at once). At 10,000 connections a round trip each is minutes."""
    with app.producer_or_acquire() as producer, producer.batch(max_size=BATCH):
        for connection_id, capture, calendar in jobs:
            if capture:
                capture_mailbox.apply_async((str(connection_id), trigger), producer=producer)
            if calendar:
                sync_calendar.apply_async((str(connection_id), trigger), producer=producer)


@receiver(sync_requested)
def sync_soon(sender: Any, connection_id: uuid.UUID, trigger: str = "manual", **kwargs: Any) -> None:
    """"Sync now" and push notifications: dispatch at once rather than at the next minute."""
    from .tasks import dispatch_due_syncs

    dispatch_due_syncs.apply_async(kwargs={"trigger": trigger})
