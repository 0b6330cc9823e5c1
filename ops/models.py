from __future__ import annotations

from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the heartbeat task: operators (and /healthz) see at a
    glance whether workers and beat are alive."""

    worker = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField(default=timezone.now)
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-last_seen",)

    def __str__(self) -> str:
        return self.worker
