from __future__ import annotations

from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker took the heartbeat beat sends to each queue: operators (and
    /healthz) see at a glance which queues have a live worker."""

    worker = models.CharField(max_length=200)
    queue = models.CharField(max_length=100, default="default")
    last_seen = models.DateTimeField(default=timezone.now)
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-last_seen",)
        constraints = [models.UniqueConstraint(fields=("worker", "queue"), name="one_heartbeat_per_worker_queue")]

    def __str__(self) -> str:
        return f"{self.worker} ({self.queue})"


class BeatHeartbeat(models.Model):
    """The last time Celery beat's scheduler ticked (ops.beat.HeartbeatScheduler records it)."""

    scheduler = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField(default=timezone.now)
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-last_seen",)

    def __str__(self) -> str:
        return self.scheduler
