from __future__ import annotations

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(name="ops.record_heartbeat", queue="default", bind=True, max_retries=3, default_retry_delay=5)
def record_heartbeat(self) -> str:  # type: ignore[no-untyped-def]
    """Record that a worker is alive. Idempotent: an upsert on the worker's name."""
    worker = self.request.hostname or "unknown"
    heartbeat, _ = WorkerHeartbeat.objects.get_or_create(worker=worker)
    WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen=timezone.now(), beats=F("beats") + 1)
    return worker
