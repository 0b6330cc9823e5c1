"""A task goes through the configured broker (Redis in CI) to a real worker process and writes
to the real database."""

from __future__ import annotations

import os
import time

import pytest

from ops.models import WorkerHeartbeat
from ops.tasks import record_heartbeat
from tests.workers import real_worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_runs_through_a_real_worker() -> None:
    with real_worker(queues="default", hostname="heartbeat-worker@%h") as worker:
        record_heartbeat.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.worker.startswith("heartbeat-worker@")
    assert heartbeat.beats == 1


def test_the_broker_is_the_configured_one() -> None:
    """CI points CELERY_BROKER_URL at Redis; this shows the round trip above used it."""
    from aspire_sync.celery import app

    assert app.conf.broker_url == os.environ.get("CELERY_BROKER_URL", "filesystem://")
