from __future__ import annotations

from celery import shared_task

from .scheduling import dispatch_due


@shared_task(name="sync.dispatch_due", queue="default", max_retries=0, ignore_result=True)
def dispatch_due_syncs(trigger: str = "schedule") -> int:
    return dispatch_due(trigger=trigger)
