from __future__ import annotations

import uuid

from celery import shared_task

from aspire_sync.celery import connection_task

from .capture import run_capture
from .models import MailSyncState
from .push import connections_needing_push, ensure_push, needs_push


@connection_task(name="mailsync.capture_mailbox", queue="mail")
def capture_mailbox(connection_id: str, trigger: str = "schedule", *, owner: str) -> str:
    """Capture the connection's Aspire folder. Safe to run twice: runs are leased per connection
    and every message is captured at most once (see mailsync.capture)."""
    run = run_capture(connection_id=connection_id, owner=owner, trigger=trigger)
    if run is not None and needs_push(MailSyncState.objects.get(connection_id=run.connection_id)):
        ensure_push_channel.delay(connection_id)
    return str(run.outcome) if run else "not capturing mail"


@shared_task(name="mailsync.ensure_push", queue="mail", ignore_result=True)
def ensure_push_channel(connection_id: str) -> None:
    try:
        ensure_push(connection_id=uuid.UUID(connection_id))
    except MailSyncState.DoesNotExist:
        return


@shared_task(name="mailsync.renew_push", queue="mail", ignore_result=True)
def renew_push_channels() -> int:
    """Hourly: create the missing push channels and renew those expiring within a day."""
    ids = connections_needing_push()
    for connection_id in ids:
        ensure_push_channel.delay(str(connection_id))
    return len(ids)
