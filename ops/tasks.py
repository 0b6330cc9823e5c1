from __future__ import annotations

from celery import shared_task

from .heartbeats import record_worker_heartbeat


@shared_task(name="ops.record_heartbeat", queue="default", bind=True, max_retries=3, default_retry_delay=5)
def record_heartbeat(self, queue: str = "default") -> str:  # type: ignore[no-untyped-def]
    """Record that a worker consuming ``queue`` is alive (beat sends one to every queue)."""
    worker = self.request.hostname or "unknown"
    record_worker_heartbeat(worker=worker, queue=queue)
    return worker
