"""The sync contract with a real worker killed mid-run: nothing lost, nothing twice."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from activities.models import Activity
from mailsync.capture import run_capture
from mailsync.models import EmailSource, MailSyncState
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
EMAIL = "bob@greenleaf.example"


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def aspire_count(sandbox: SandboxProcess) -> int:
    mailbox = sandbox.control("GET", f"/accounts/microsoft/{EMAIL}/mailbox")
    return next(len(f["messages"]) for f in mailbox["folders"] if f["name"] == "Aspire")


def lease_has_lapsed(connection_id: Any) -> None:
    """What two minutes do: a dead worker's lease runs out."""
    MailSyncState.objects.filter(connection_id=connection_id).update(lease_until=timezone.now())


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
