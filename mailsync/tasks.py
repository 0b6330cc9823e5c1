from __future__ import annotations

from aspire_sync.celery import connection_task

from .capture import run_capture


@connection_task(name="mailsync.capture_mailbox", queue="mail")
def capture_mailbox(connection_id: str, trigger: str = "schedule", *, owner: str) -> str:
    """Capture the connection's Aspire folder. Safe to run twice: runs are leased per connection
    and every message is captured at most once (see mailsync.capture)."""
    run = run_capture(connection_id=connection_id, owner=owner, trigger=trigger)
    return str(run.outcome) if run else "not capturing mail"
