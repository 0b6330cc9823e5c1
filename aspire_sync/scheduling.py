"""Which connections sync when. Every connection syncs at least hourly, at its own minute of the
hour so the load is spread; "Sync now" and provider push notifications make it due at once."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.mailbox import next_hourly_sync
from accounts.models import MailboxConnection
from accounts.signals import sync_requested
from calendarsync.tasks import sync_calendar
from mailsync.tasks import capture_mailbox

BATCH = 500


def dispatch_due(*, trigger: str = "schedule") -> int:
    """Claim the connections that are due and enqueue their syncs. Claiming moves each one's
    next sync an hour on in the same transaction (rows locked with SKIP LOCKED), so two
    dispatchers never enqueue the same connection twice."""
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
    return len(due)


def _enqueue(jobs: list[tuple[uuid.UUID, bool, bool]], trigger: str) -> None:
    for connection_id, capture, calendar in jobs:
        if capture:
            capture_mailbox.apply_async((str(connection_id), trigger), queue="mail")
        if calendar:
            sync_calendar.apply_async((str(connection_id), trigger), queue="calendar")


@receiver(sync_requested)
def sync_soon(sender: Any, connection_id: uuid.UUID, trigger: str = "manual", **kwargs: Any) -> None:
    """"Sync now" and push notifications: dispatch at once rather than at the next minute."""
    from .tasks import dispatch_due_syncs

    dispatch_due_syncs.apply_async(kwargs={"trigger": trigger}, queue="default")
