"""Which connections sync when. Every connection syncs at least hourly, at its own minute of the
hour so the load is spread; "Sync now" and provider push notifications make it due at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun
from accounts.runs import interrupted, lapsed_leases
from accounts.signals import sync_requested
from calendarsync.tasks import sync_calendar
from mailsync.tasks import capture_mailbox

BATCH = 500
SYNC_INTERVAL = dt.timedelta(hours=1)


def spread_offset(connection_id: object) -> dt.timedelta:
    """A stable minute-of-the-hour per connection, so hourly syncs spread over the hour."""
    digest = hashlib.sha256(str(connection_id).encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:4], "big") % 3600)


def next_hourly_sync(connection: MailboxConnection, after: dt.datetime) -> dt.datetime:
    hour = after.replace(minute=0, second=0, microsecond=0)
    candidate = hour + spread_offset(connection.pk)
    return candidate if candidate > after else candidate + SYNC_INTERVAL


def dispatch_due(*, trigger: str = "schedule") -> int:
    """Claim the connections that are due and enqueue their syncs, then pick up the runs a killed
    worker left unfinished. Claiming moves each one's next sync an hour on in the same transaction
    (rows locked with SKIP LOCKED), so two dispatchers never enqueue the same connection twice."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            MailboxConnection.objects.select_for_update(skip_locked=True)
            .filter(state=MailboxConnection.State.CONNECTED, next_sync_at__lte=now)
            .order_by("next_sync_at")[:BATCH]
        )
        for connection in due:
            connection.next_sync_at = next_hourly_sync(connection, now)
        MailboxConnection.objects.bulk_update(due, ["next_sync_at"])
        jobs = [(c.pk, c.sync_email and c.sync_aspire_folder, c.sync_calendar) for c in due]
        transaction.on_commit(lambda: _enqueue(jobs, trigger))
    return len(due) + recover_interrupted()


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
    for connection_id, capture, calendar in jobs:
        if capture:
            capture_mailbox.delay(str(connection_id), trigger)
        if calendar:
            sync_calendar.delay(str(connection_id), trigger)


@receiver(sync_requested)
def sync_soon(sender: Any, connection_id: uuid.UUID, trigger: str = "manual", **kwargs: Any) -> None:
    """"Sync now" and push notifications: dispatch at once rather than at the next minute."""
    from .tasks import dispatch_due_syncs

    dispatch_due_syncs.apply_async(kwargs={"trigger": trigger})
