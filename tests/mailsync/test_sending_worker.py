"""Sending through real Celery workers: two worker processes take the send tasks from the
configured broker (Redis in CI), one at a time drains the mailbox, and every message goes out once
at the mailbox's pace."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from accounts.models import User
from mailsync.models import OutboundEmail
from mailsync.sending import queue_email
from sandbox.runner import SandboxProcess
from tests.conftest import REDIRECT_URI, client_for
from tests.mailsync.test_sending import connect_bob, send_requests, sent_copies
from tests.ops.test_celery_worker import _database_url

ROOT = Path(settings.BASE_DIR)
PER_MINUTE = 1200


def start_worker(name: str, sandbox: SandboxProcess) -> subprocess.Popen[bytes]:
    base = sandbox.base_url
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "PROVIDER_CA_BUNDLE": str(sandbox.ca_path),
        "OAUTH_REDIRECT_URI": REDIRECT_URI,
        "MICROSOFT_CLIENT_ID": settings.MICROSOFT_CLIENT_ID,
        "MICROSOFT_CLIENT_SECRET": settings.MICROSOFT_CLIENT_SECRET,
        "MICROSOFT_AUTHORITY": f"{base}/organizations",
        "MICROSOFT_GRAPH_URL": f"{base}/v1.0",
        "MAIL_SEND_PER_MINUTE_MICROSOFT": str(PER_MINUTE),
    }
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if "data_folder_in" in options:  # the embedded broker: the worker reads the folder we write to
        env["CELERY_BROKER_DIR"] = str(Path(options["data_folder_in"]).parent)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aspire_sync", "worker", "-Q", "mail", "--pool", "solo",
         "--hostname", f"{name}@%h", "-l", "WARNING", "--without-heartbeat", "--without-mingle",
         "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_send_a_batch_once_each_at_the_mailboxes_pace(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    providers_on_sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": PER_MINUTE})
    settings.MAIL_SEND_PER_MINUTE = {**settings.MAIL_SEND_PER_MINUTE, "microsoft": PER_MINUTE}
    # Committed together, so each of the 120 send tasks (one per message) finds every row.
    with transaction.atomic():
        batch = [queue_email(author=bob, to=f"customer{n}@example.com", subject=f"Statement {n}", body="Attached.")
                 for n in range(120)]
    started_at = time.time()
    workers = [start_worker("sender-a", providers_on_sandbox), start_worker("sender-b", providers_on_sandbox)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and OutboundEmail.objects.exclude(state="sent").exists():
            for worker in workers:
                assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    assert OutboundEmail.objects.filter(state="sent").count() == 120
    sent_ids = sorted(m["internet_message_id"] for m in sent_copies(providers_on_sandbox, "microsoft"))
    assert sent_ids == sorted(o.message_id for o in batch)  # each exactly once
    attempts = send_requests(providers_on_sandbox, "microsoft")
    assert len(attempts) == 120 and all(r["status"] == 202 for r in attempts)
    gaps = [later["ts"] - earlier["ts"] for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= 60 / PER_MINUTE - 0.002  # one sender at a time, at the pace
    first, last = attempts[0]["ts"], attempts[-1]["ts"]
    print(f"first send {first - started_at:.1f} s after the workers started; 120 sends in {last - first:.1f} s")
