"""Celery beat's scheduler: django-celery-beat's database scheduler, which also keeps the
heartbeats. Every ``HEARTBEAT_SECONDS`` it records its own (beat is alive) and sends a heartbeat
task to every queue (``aspire_sync.celery.known_queues``), so /healthz can tell, queue by queue,
whether a worker is taking work."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from celery import platforms
from django.conf import settings
from django.db import DatabaseError
from django_celery_beat.schedulers import DatabaseScheduler

from aspire_sync.celery import known_queues

from .heartbeats import record_beat_heartbeat

logger = logging.getLogger(__name__)


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat: float | None = None
    _stop_asked = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Celery's own stop handler writes the schedule from inside the signal handler, in the
        # middle of whatever beat was doing: inside a query (reading the schedule, a heartbeat) it
        # waits forever for the lock that query holds on the connection. Ours only asks beat to
        # stop; the next tick does, and beat writes its schedule on the way out.
        platforms.signals.update(SIGTERM=self._ask_to_stop, SIGINT=self._ask_to_stop)
        super().__init__(*args, **kwargs)

    def _ask_to_stop(self, signum: int, frame: Any) -> None:
        self._stop_asked = True

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self._stop_asked:
            raise SystemExit()  # beat's loop ends on it, and syncs the schedule
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
        except DatabaseError:
            logger.warning("Could not record beat's heartbeat: the database is unreachable", exc_info=True)
        for queue in known_queues():
            # A heartbeat that waited longer than the interval says nothing about now: it expires.
            self.app.send_task("ops.record_heartbeat", args=(queue,), queue=queue, expires=interval)
