"""Sending through real Celery workers: two worker processes take the send tasks from the
configured broker (Redis in CI), one at a time drains the mailbox, and every message goes out once
at the mailbox's pace; sends have a queue of their own, so capture never waits behind them."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import pytest
from django.db import transaction

from accounts.models import User
from activities.models import Activity
from aspire_sync.celery import known_queues
from mailsync.capture import run_capture
from mailsync.models import OutboundEmail
from mailsync.outbox import queue_email
from mailsync.send_tasks import send_due_mail, send_queue
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox, drop, mime
from tests.mailsync.test_sending import connect_bob, send_requests, sent_copies
from tests.workers import real_worker

PER_MINUTE = 1200


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_send_a_batch_once_each_at_the_mailboxes_pace(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    providers_on_sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": PER_MINUTE})
    settings.MAIL_SEND_PER_MINUTE = {**settings.MAIL_SEND_PER_MINUTE, "microsoft": PER_MINUTE}
    monkeypatch.setenv("MAIL_SEND_PER_MINUTE_MICROSOFT", str(PER_MINUTE))  # the workers' pace
    with contextlib.ExitStack() as stack:
        workers = [stack.enter_context(real_worker(queues="send", hostname=f"{name}@%h"))
                   for name in ("sender-a", "sender-b")]
        started_at = time.time()
        # Committed together, so each of the 120 send tasks (one per message) finds every row.
        with transaction.atomic():
            batch = [queue_email(author=bob, to=f"customer{n}@example.com", subject=f"Statement {n}",
                                 body="Attached.") for n in range(120)]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and OutboundEmail.objects.exclude(state="sent").exists():
            assert all(worker.poll() is None for worker in workers)
            time.sleep(0.5)

    assert OutboundEmail.objects.filter(state="sent").count() == 120
    sent_ids = sorted(m["internet_message_id"] for m in sent_copies(providers_on_sandbox, "microsoft"))
    assert sent_ids == sorted(o.message_id for o in batch)  # each exactly once
    attempts = send_requests(providers_on_sandbox, "microsoft")
    assert len(attempts) == 120 and all(r["status"] == 202 for r in attempts), [
        (r["status"], r.get("fault")) for r in attempts if r["status"] != 202]
    gaps = [later["ts"] - earlier["ts"] for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= 60 / PER_MINUTE - 0.002  # one sender at a time, at the pace
    first, last = attempts[0]["ts"], attempts[-1]["ts"]
    print(f"first send {first - started_at:.1f} s after the workers started; 120 sends in {last - first:.1f} s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sending_has_workers_of_its_own_so_a_slow_send_never_holds_up_capture(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    assert send_queue.queue == send_due_mail.queue == "send"
    assert {"mail", "send"} <= set(known_queues())  # so /healthz and the heartbeats know it
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="folders")
    # The send takes 15 s at the provider: the drain holds its worker that long.
    providers_on_sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 15, "path": "sendMail"})
    with real_worker(queues="send", hostname="send-only@%h"), real_worker(queues="mail", hostname="mail-only@%h"):
        for n in range(2):
            queue_email(author=bob, to=f"customer{n}@example.com", subject=f"Statement {n}", body="Attached.")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not OutboundEmail.objects.filter(state="sending").exists():
            time.sleep(0.1)
        drop(providers_on_sandbox, "microsoft", "bob@greenleaf.example", mime("Can you come Tuesday?"))
        asked_at = time.monotonic()
        capture_mailbox.delay(str(connection.pk), "push")
        deadline = asked_at + 30
        while time.monotonic() < deadline and not Activity.objects.filter(subject="Can you come Tuesday?").exists():
            time.sleep(0.1)
        captured_in = time.monotonic() - asked_at
        still_sending = OutboundEmail.objects.exclude(state="sent").exists()

    assert Activity.objects.filter(subject="Can you come Tuesday?").exists()
    assert still_sending  # the send drain was still at work ...
    assert captured_in < 10, captured_in  # ... and capture did not wait for it
