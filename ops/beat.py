"""Celery beat's scheduler: django-celery-beat's database scheduler, which also keeps the
heartbeats. Every ``HEARTBEAT_SECONDS`` it records its own (beat is alive) and sends a heartbeat
task to every queue (``aspire_sync.celery.known_queues``), so /healthz can tell, queue by queue,
whether a worker is taking work."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django_celery_beat.schedulers import DatabaseScheduler

from aspire_sync.celery import known_queues

from .heartbeats import record_beat_heartbeat

logger = logging.getLogger(__name__)


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat: float | None = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        interval = float(settings.HEARTBEAT_SECONDS)
        if self._last_heartbeat is None or now - self._last_heartbeat >= interval:
            self._last_heartbeat = now
            self._send_heartbeats(interval)
        delay = super().tick(*args, **kwargs)
        return min(delay, max(interval - (time.monotonic() - self._last_heartbeat), 0.1))

    def _send_heartbeats(self, interval: float) -> None:
        try:
            record_beat_heartbeat(scheduler=f"beat@{socket.gethostname()}")
        except Exception as exc:
            if _stopped_by_signal(exc):
                # Beat's stop signal raises SystemExit wherever beat is; inside a query the driver
                # turns it into an error of its own. Stop, as asked, not with that error.
                raise SystemExit() from None
            if not isinstance(exc, DatabaseError):
                raise
            logger.warning("Could not record beat's heartbeat: the database is unreachable", exc_info=True)
        for queue in known_queues():
            # A heartbeat that waited longer than the interval says nothing about now: it expires.
            self.app.send_task("ops.record_heartbeat", args=(queue,), queue=queue, expires=interval)


def _stopped_by_signal(exc: BaseException) -> bool:
    """Whether a stop (SystemExit, KeyboardInterrupt) is behind this error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (SystemExit, KeyboardInterrupt)):
            return True
        seen = seen.__context__
    return False
