"""Heartbeats: beat records its own as it ticks and sends one task to every queue; the worker that
takes it records the queue's. ``health`` reads them back for /healthz."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F, Max
from django.utils import timezone

from aspire_sync.celery import app, known_queues

from .models import BeatHeartbeat, WorkerHeartbeat


def record_worker_heartbeat(*, worker: str, queue: str) -> None:
    """Idempotent: an upsert on the worker and queue."""
    heartbeat, _ = WorkerHeartbeat.objects.get_or_create(worker=worker, queue=queue)
    WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen=timezone.now(), beats=F("beats") + 1)


def record_beat_heartbeat(*, scheduler: str) -> None:
    heartbeat, _ = BeatHeartbeat.objects.get_or_create(scheduler=scheduler)
    BeatHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen=timezone.now(), beats=F("beats") + 1)


@dataclass(frozen=True)
class Health:
    checks: dict[str, dict[str, Any]]

    @property
    def down(self) -> list[str]:
        return [name for name, check in self.checks.items() if check["status"] != "ok"]

    def as_json(self) -> dict[str, Any]:
        return {"status": "down" if self.down else "ok", "down": self.down, "checks": self.checks}


def _stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)


def _heartbeat_check(last_seen: dt.datetime | None, now: dt.datetime, *, missing: str) -> dict[str, Any]:
    if last_seen is None:
        return {"status": "down", "last_seen": None, "reason": missing}
    age = (now - last_seen).total_seconds()
    if age > settings.HEARTBEAT_STALE_SECONDS:
        return {"status": "down", "last_seen": last_seen.isoformat(),
                "reason": f"no heartbeat for {int(age)} s (more than {settings.HEARTBEAT_STALE_SECONDS} s)"}
    return {"status": "ok", "last_seen": last_seen.isoformat()}


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {"status": "down", "reason": type(exc).__name__}
    return {"status": "ok"}


def _broker() -> dict[str, Any]:
    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=settings.HEALTH_BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to reach the broker is the answer, not an error here
        return {"status": "down", "reason": type(exc).__name__}
    return {"status": "ok"}


def health() -> Health:
    """The database, the broker, beat, and a worker for every queue: each ok, or down and why.
    Worker and host names are not shown: the endpoint answers anyone who can reach it."""
    checks: dict[str, dict[str, Any]] = {"database": _database(), "broker": _broker()}
    queues = known_queues()
    if checks["database"]["status"] != "ok":
        unknown = {"status": "down", "reason": "the database is down, where heartbeats are kept"}
        checks["beat"] = unknown
        checks.update({f"worker:{queue}": unknown for queue in queues})
        return Health(checks)
    now = timezone.now()
    checks["beat"] = _heartbeat_check(BeatHeartbeat.objects.aggregate(latest=Max("last_seen"))["latest"], now,
                                      missing="beat has never ticked")
    latest = dict(WorkerHeartbeat.objects.filter(queue__in=queues).values("queue")
                  .annotate(latest=Max("last_seen")).values_list("queue", "latest"))
    for queue in queues:
        checks[f"worker:{queue}"] = _heartbeat_check(latest.get(queue), now,
                                                     missing=f"no worker has ever taken the {queue} queue's heartbeat")
    return Health(checks)
