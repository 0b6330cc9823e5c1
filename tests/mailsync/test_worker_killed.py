"""The sync contract with a real worker killed mid-run: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import signal
import time
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun, User
from activities.models import Activity
from aspire_sync.tasks import dispatch_due_syncs
from mailsync.capture import run_capture
from mailsync.models import EmailSource, MailSyncState
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
EMAIL = "bob@greenleaf.example"


def wait_for(condition: Any, seconds: float = 30, every: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError("timed out")


def aspire_count(sandbox: SandboxProcess) -> int:
    mailbox = sandbox.control("GET", f"/accounts/microsoft/{EMAIL}/mailbox")
    return next(len(f["messages"]) for f in mailbox["folders"] if f["name"] == "Aspire")


def lease_has_lapsed(connection_id: Any) -> None:
    """What two minutes do: a dead worker's lease runs out, and so do the Graph request slots its
    requests held (accounts.quotas.graph_slots, leased as long)."""
    MailSyncState.objects.filter(connection_id=connection_id).update(lease_until=timezone.now())
    slots = redis.Redis.from_url(settings.REDIS_URL)
    for key in slots.scan_iter("graph:slots:*"):
        slots.delete(key)


@pytest.mark.parametrize("moment", ["between the commit and the move", "between two messages"])
def test_a_worker_killed_mid_run(moment: str, providers_on_sandbox: SandboxProcess, bob: User) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")
    for n in range(5):
        drop(sandbox, "microsoft", EMAIL, mime(f"Estimate {n}"))
    hang = "/\\$batch" if moment == "between the commit and the move" else "/\\$value"
    sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 60, "path": hang, "count": 1})

    with real_worker(queues="mail") as worker:
        capture_mailbox.apply_async((str(connection.pk), "manual"), queue="mail")
        if moment == "between the commit and the move":
            wait_for(lambda: Activity.objects.filter(subject__startswith="Estimate").count() == 5)
        else:
            wait_for(lambda: any("$value" in r["path"] for r in sandbox.control("GET", "/requests")["requests"]))
            time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    committed = Activity.objects.filter(subject__startswith="Estimate").count()
    assert committed == (5 if moment == "between the commit and the move" else 0)
    assert aspire_count(sandbox) == 5  # nothing moved, nothing lost
    sandbox.control("DELETE", "/faults")
    lease_has_lapsed(connection.pk)

    run = run_capture(connection_id=connection.pk, owner="next run")
    assert run is not None and run.outcome == "succeeded"
    assert Activity.objects.filter(subject__startswith="Estimate").count() == 5  # once each
    assert EmailSource.objects.filter(connection=connection).count() == 5
    assert aspire_count(sandbox) == 0


def test_a_run_cut_off_by_a_killed_worker_is_picked_up_again_from_the_database(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kill -9 mid-capture with more mail waiting: the rest is captured with no manual step, once the
    dead run's lease lapses, not when the broker redelivers its task (an hour later, with Redis)."""
    sandbox = providers_on_sandbox
    settings.SYNC_RUN_LEASE_SECONDS = 3  # the workers' lease; 120 s in production
    connection = connected_mailbox(sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")
    for n in range(8):
        drop(sandbox, "microsoft", EMAIL, mime(f"Estimate {n}"))
    sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 60, "path": "/\\$value", "count": 1})
    with real_worker(queues="default,mail") as worker:
        capture_mailbox.delay(str(connection.pk), "manual")
        wait_for(lambda: any("$value" in r["path"] for r in sandbox.control("GET", "/requests")["requests"]))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    killed_at = time.monotonic()
    assert aspire_count(sandbox) == 8
    # The dispatcher already moved the connection's next sync an hour on: only recovery brings it back.
    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + dt.timedelta(hours=1))
    with real_worker(queues="default,mail", hostname="survivor@%h") as survivor:
        # Beat's every-minute tick, every second here.
        def tick_and_check() -> bool:
            dispatch_due_syncs.delay()
            return aspire_count(sandbox) == 0
        wait_for(tick_and_check, seconds=60, every=1.0)
        assert survivor.poll() is None
    recovered_in = time.monotonic() - killed_at
    assert Activity.objects.filter(subject__startswith="Estimate").count() == 8  # once each
    assert EmailSource.objects.filter(connection=connection).count() == 8
    interrupted = SyncRun.objects.get(connection=connection, trigger="manual")
    assert interrupted.outcome == SyncRun.Outcome.RETRYING and "interrupted" in interrupted.error
    print(f"captured the rest {recovered_in:.1f} s after the kill (lease {settings.SYNC_RUN_LEASE_SECONDS} s)")
