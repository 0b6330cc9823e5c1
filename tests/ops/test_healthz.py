"""/healthz: the database, the broker, beat's heartbeat and a worker's for every queue, with a real
beat and a real worker; a stopped worker is reported within a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from aspire_sync.celery import known_queues
from tests.workers import database_url, real_worker

HEARTBEAT_SECONDS = 2
STALE_SECONDS = 6


def healthz() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    return response.status_code, response.json()


def wait_until(condition: Any, *, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout} s; /healthz says {healthz()}")


@pytest.fixture
def short_heartbeats(settings: Any) -> None:
    settings.HEARTBEAT_SECONDS = HEARTBEAT_SECONDS
    settings.HEARTBEAT_STALE_SECONDS = STALE_SECONDS


@pytest.fixture
def real_beat(short_heartbeats: None) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": database_url(), "HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aspire_sync", "beat", "-l", "WARNING"],
        cwd=settings.BASE_DIR, env=env,
    )
    try:
        yield beat
    finally:
        beat.terminate()
        beat.wait(timeout=30)


def test_the_queues_checked_are_every_queue_a_task_is_sent_to() -> None:
    assert known_queues() == ["calendar", "default", "mail", "send"]


@pytest.mark.django_db
def test_nothing_has_beaten_yet_is_down_and_says_so(short_heartbeats: None) -> None:
    status, body = healthz()
    assert status == 503
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["broker"] == {"status": "ok"}
    assert body["checks"]["beat"]["reason"] == "beat has never ticked"
    assert set(body["down"]) == {"beat", "worker:calendar", "worker:default", "worker:mail", "worker:send"}


@pytest.mark.django_db
def test_health_and_metrics_answer_over_plain_http_where_pages_redirect(short_heartbeats: None, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_TOKEN = "token"
    assert Client().get("/login/").status_code == 301
    assert Client().get("/healthz").status_code == 503  # answered (nothing has beaten in this test)
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer token").status_code == 200


@pytest.mark.django_db
def test_the_broker_down_is_reported(short_heartbeats: None, settings: Any) -> None:
    from aspire_sync.celery import app

    original = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.HEALTH_BROKER_TIMEOUT_SECONDS = 1
    try:
        status, body = healthz()
    finally:
        app.conf.broker_write_url = original
    assert status == 503
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_stopped_worker_is_reported_down_within_a_minute(real_beat: subprocess.Popen[bytes]) -> None:
    with real_worker(queues=",".join(known_queues()), hostname="health-worker@%h") as worker:
        wait_until(lambda: healthz()[0] == 200, timeout=60, what="everything up")
        _, body = healthz()
        assert body == {"status": "ok", "down": [], "checks": body["checks"]}
        assert all(check["status"] == "ok" for check in body["checks"].values())
        worker.terminate()
        worker.wait(timeout=30)
        stopped = time.monotonic()
    # Each of its queues is down once that queue's last heartbeat is stale (they were taken in turn).
    every_queue = {f"worker:{queue}" for queue in known_queues()}
    took = wait_until(lambda: set(healthz()[1]["down"]) == every_queue, timeout=60,
                      what="the stopped worker reported")
    assert real_beat.poll() is None
    status, body = healthz()
    assert status == 503
    assert set(body["down"]) == {"worker:calendar", "worker:default", "worker:mail", "worker:send"}
    assert body["checks"]["beat"]["status"] == "ok"
    assert "no heartbeat for" in body["checks"]["worker:mail"]["reason"]
    assert time.monotonic() - stopped < 60, took
