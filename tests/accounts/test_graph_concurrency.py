"""Graph allows an application 4 concurrent requests per mailbox and answers a fifth with 429.
Capture, calendar and sending on the same mailbox draw from one set of slots in Redis, across
threads and worker processes, so the sandbox (which enforces the limit) never has to refuse one;
a slot whose holder was killed frees itself when its lease lapses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection as db_connection

from accounts import quotas
from accounts.models import User
from accounts.provider_registry import get_provider
from accounts.runs import fresh_grant
from activities.models import Activity
from calendarsync.sync import run_calendar_sync
from mailsync.capture import run_capture
from mailsync.models import OutboundEmail
from mailsync.outbox import queue_email
from mailsync.sending import drain_queue
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

ADDRESS = "bob@greenleaf.example"
MESSAGES = 12
SENDS = 4


def in_thread(work: Callable[[], object], failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            db_connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_capture_calendar_and_sending_on_one_mailbox_never_exceed_four_requests_at_once(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", ADDRESS)
    run_capture(connection_id=connection.pk, owner="folders")  # makes the Aspire folder
    for n in range(MESSAGES):
        drop(providers_on_sandbox, "microsoft", ADDRESS, mime(f"Estimate {n}"))
    settings.MAIL_SEND_PER_MINUTE = {**settings.MAIL_SEND_PER_MINUTE, "microsoft": 600}
    for n in range(SENDS):
        queue_email(author=bob, to=f"customer{n}@example.com", subject=f"Statement {n}", body="Attached.")
    # Every Graph call takes 300 ms, so the work overlaps as it would on a real network.
    providers_on_sandbox.control("POST", "/latency", json={"latency_ms": 300})
    provider = get_provider("microsoft")
    grant = fresh_grant(connection_id=connection.pk)
    folders = provider.ensure_folders(grant, ("Aspire",))
    failures: list[BaseException] = []

    def look_around() -> None:  # other work on the mailbox: listing, as a push-driven run would
        for _ in range(6):
            provider.list_folder(grant, folders["Aspire"])

    with real_worker(queues="mail", hostname="slots-worker@%h", pool="threads", concurrency=2):
        capture_mailbox.delay(str(connection.pk), "push")  # capture in the worker process
        threads = [
            in_thread(lambda: drain_queue(connection_id=connection.pk, owner="sender"), failures),
            in_thread(lambda: run_calendar_sync(connection_id=connection.pk, owner="calendar"), failures),
            *(in_thread(look_around, failures) for _ in range(3)),
        ]
        for thread in threads:
            thread.join(timeout=120)
        deadline = time.monotonic() + 120
        captured = Activity.objects.filter(subject__startswith="Estimate")
        while time.monotonic() < deadline and captured.count() < MESSAGES:
            time.sleep(0.5)

    assert not failures, failures
    assert captured.count() == MESSAGES
    assert OutboundEmail.objects.filter(state="sent").count() == SENDS
    counters = providers_on_sandbox.control("GET", "/counters")["counters"][ADDRESS]
    assert counters.get("status_429", 0) == 0, counters
    # The mailbox was kept busy, up to Graph's limit and never past it.
    print("peak concurrent Graph requests:", counters["graph.peak_concurrent"])
    assert 2 <= counters["graph.peak_concurrent"] <= 4, counters
    assert quotas.graph_slots_held(str(grant.data["home_account_id"])) == 0  # every slot given back


def test_a_killed_holders_slots_free_themselves_when_their_lease_lapses(settings: Any) -> None:
    settings.GRAPH_SLOT_WAIT_SECONDS = 15
    mailbox = f"killed-holder-{time.time()}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import django, sys, time; django.setup()\n"
                "from accounts import quotas\n"
                f"held = quotas.graph_slots({mailbox!r}, 4); held.__enter__()\n"
                "print('held', flush=True); time.sleep(120)\n"
            ),
        ],
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "GRAPH_SLOT_LEASE_SECONDS": "3", "DJANGO_SETTINGS_MODULE": "aspire_sync.settings"},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert quotas.graph_slots_held(mailbox) == 4
        os.kill(holder.pid, signal.SIGKILL)  # a worker killed mid-request: nobody gives the slots back
        holder.wait(timeout=10)
        started = time.monotonic()
        with quotas.graph_slots(mailbox, 1):
            waited = time.monotonic() - started
            assert quotas.graph_slots_held(mailbox) == 1
    finally:
        if holder.poll() is None:
            holder.kill()
    assert 0.5 < waited < 5  # the rest of the killed holder's lease, then a slot
    assert quotas.graph_slots_held(mailbox) == 0


def test_a_request_that_finds_no_slot_in_time_is_throttled(settings: Any) -> None:
    settings.GRAPH_SLOT_WAIT_SECONDS = 0.3
    mailbox = f"busy-{time.time()}"
    with quotas.graph_slots(mailbox, 4), pytest.raises(quotas.Throttled) as refused, quotas.graph_slots(mailbox):
        pass
    assert refused.value.retry_after and not refused.value.permanent
