"""Real Celery worker processes for tests, on the test database and the configured broker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

# Settings a test may point elsewhere (the sandbox) that the worker must see too.
FORWARDED_SETTINGS = (
    "PROVIDER_CA_BUNDLE", "OAUTH_REDIRECT_URI", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET",
    "MICROSOFT_AUTHORITY", "MICROSOFT_GRAPH_URL", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_AUTH_URI",
    "GOOGLE_TOKEN_URI", "GOOGLE_REVOKE_URI", "GOOGLE_API_ENDPOINT", "SYNC_RUN_LEASE_SECONDS",
    "MAIL_SEND_VERIFY_DELAY_SECONDS", "MAIL_SEND_LEASE_SECONDS", "MAIL_DRAIN_LOST_AFTER_SECONDS",
    "PUSH_BASE_URL", "GOOGLE_PUBSUB_TOPIC", "GOOGLE_PUBSUB_SERVICE_ACCOUNT", "GOOGLE_PUBSUB_CERTS_URL",
)


def database_url() -> str:
    """The URL of the test database this process is using."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def real_worker(*, queues: str = "default,mail", hostname: str = "test-worker@%h", pool: str = "solo",
                concurrency: int = 1, env_extra: dict[str, str] | None = None,
                output: IO[bytes] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``output``: a file that takes the worker's stdout and stderr (the console otherwise)."""
    env = {**os.environ, "DATABASE_URL": database_url(), **(env_extra or {})}
    for name in FORWARDED_SETTINGS:
        value = getattr(settings, name)
        env[name] = "" if value is None else str(value)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if "data_folder_in" in options:  # the embedded broker: the worker reads the folder we write to
        env["CELERY_BROKER_DIR"] = str(Path(options["data_folder_in"]).parent)
    # Tasks left in the broker by earlier tests (or an earlier run, with Redis) are not this test's.
    from aspire_sync.celery import app

    with app.connection_for_write() as broker:
        for queue in queues.split(","):
            broker.default_channel.queue_purge(queue)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aspire_sync", "worker", "-Q", queues, "--pool", pool,
         "--concurrency", str(concurrency),
         "--hostname", hostname, "-l", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
    )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
