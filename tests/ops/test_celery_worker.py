"""A task goes through the configured broker (Redis in CI) to a real worker process and writes
to the real database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from ops.models import WorkerHeartbeat
from ops.tasks import record_heartbeat

ROOT = Path(settings.BASE_DIR)


def _database_url() -> str:
    """The URL of the test database this process is using, for the worker to use too."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_runs_through_a_real_worker() -> None:
    env = {**os.environ, "DATABASE_URL": _database_url()}
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if "data_folder_in" in options:  # the embedded broker: the worker reads the folder we write to
        env["CELERY_BROKER_DIR"] = str(Path(options["data_folder_in"]).parent)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "aspire_sync",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "--hostname",
            "test-worker@%h",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        record_heartbeat.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
            time.sleep(0.2)
        heartbeat = WorkerHeartbeat.objects.get()
        assert heartbeat.worker.startswith("test-worker@")
        assert heartbeat.beats == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_the_broker_is_the_configured_one() -> None:
    """CI points CELERY_BROKER_URL at Redis; this shows the round trip above used it."""
    from aspire_sync.celery import app

    expected = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    assert app.conf.broker_url == expected
