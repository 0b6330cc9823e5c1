from __future__ import annotations

import logging

from celery import shared_task

from accounts.retention import prune_sync_runs
from mailsync.retention import clean_spool, release_sent_attachments

from .scheduling import dispatch_due

log = logging.getLogger(__name__)


@shared_task(name="sync.dispatch_due", queue="default", max_retries=0, ignore_result=True)
def dispatch_due_syncs(trigger: str = "schedule") -> int:
    return dispatch_due(trigger=trigger)


@shared_task(name="ops.prune_records", queue="default", max_retries=0, ignore_result=True)
def prune_records() -> dict[str, int]:
    """Retention, hourly from beat: run records past their keep, sent mail's attachments, stale spool."""
    pruned = {"sync_runs": prune_sync_runs(), "sent_attachments": release_sent_attachments(),
              "spool_entries": clean_spool()}
    log.info("records pruned", extra=pruned)
    return pruned
