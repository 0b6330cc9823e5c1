from __future__ import annotations

from aspire_sync.celery import connection_task

from .sync import run_calendar_sync


@connection_task(name="calendarsync.sync_calendar", queue="calendar")
def sync_calendar(connection_id: str, trigger: str = "schedule", *, owner: str) -> str:
    """Sync the connection's calendar both ways. Safe to run twice: runs are leased per connection,
    creates at the provider are idempotent and appointments are upserted by event id."""
    run = run_calendar_sync(connection_id=connection_id, owner=owner, trigger=trigger)
    return str(run.outcome) if run else "not syncing the calendar"
