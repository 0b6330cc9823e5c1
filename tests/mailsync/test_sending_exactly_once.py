"""Sending: never twice, never stuck, never amplified. Against the sandbox through the real adapters;
the recoveries through real workers and the configured broker."""

from __future__ import annotations

import datetime as dt
import signal
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from aspire_sync.celery import app
from mailsync.models import OutboundEmail, SendQueue
from mailsync.outbox import queue_email
from mailsync.send_tasks import send_queue
from mailsync.sending import drain_lost_after, sweep
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailsync.test_sending import SEND_PATH, connect_bob, queue, run_sender, send_requests, sent_copies
from tests.workers import real_worker


def broker_messages(queue_name: str = "send") -> int:
    with app.connection_for_write() as broker:
        return int(broker.default_channel.queue_declare(queue=queue_name, passive=True).message_count)


def purge(queue_name: str = "send") -> None:
    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge(queue_name)


# -- a gateway error after the provider took the message ------------------------------------------


@pytest.mark.parametrize(("provider", "status"), [
    ("microsoft", 503), ("microsoft", 504), ("microsoft", 500),
    ("google", 500), ("google", 502), ("google", 503),
])
def test_a_server_error_after_the_send_went_out_is_looked_for_and_never_sent_twice(
    provider: str, status: int, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    outbound = queue(bob)
    # A load balancer in front of a slow backend: the message goes out, the client gets a 5xx.
    providers_on_sandbox.control("POST", "/faults", json={
        "kind": "status", "status": status, "after": True, "path": SEND_PATH[provider]})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1
    [attempt] = send_requests(providers_on_sandbox, provider)  # found in the mailbox: not sent again
    assert attempt["status"] == status


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_server_error_before_the_provider_took_it_is_sent_once_after_looking(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 503, "path": SEND_PATH[provider]})
    run_sender(connection)
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    first, second = send_requests(providers_on_sandbox, provider)
    assert first["status"] == 503 and second["status"] in (200, 202)
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1


def test_an_ambiguous_answer_that_asks_for_a_wait_waits_at_least_that_long(
    providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 5
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={
        "kind": "status", "status": 503, "retry_after": 90, "after": True, "path": "sendMail"})
    run_sender(connection)
    outbound.refresh_from_db()
    assert (outbound.state, outbound.verify_before_send) == ("queued", True)
    assert outbound.not_before >= timezone.now() + dt.timedelta(seconds=80)


# -- throttling without a Retry-After ---------------------------------------------------------


def test_a_throttle_without_retry_after_backs_the_mailbox_off_briefly_and_more_each_time(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "google")
    outbound = queue(bob)
    providers_on_sandbox.control("POST", "/faults", json={
        "kind": "status", "status": 429, "path": SEND_PATH["google"], "count": 2})
    waits = []
    for _ in range(2):
        before = timezone.now()
        assert run_sender(connection) == "sent 0"
        queue_row = SendQueue.objects.get(pk=connection.pk)
        waits.append((queue_row.next_send_at - before).total_seconds())
        # What waiting does: the pause is over.
        SendQueue.objects.filter(pk=connection.pk).update(next_send_at=timezone.now())
        OutboundEmail.objects.filter(pk=outbound.pk).update(not_before=timezone.now())
    assert 7 <= waits[0] <= 16 and 14 <= waits[1] <= 31  # short, growing; not a fixed 30 s
    assert SendQueue.objects.get(pk=connection.pk).throttled_in_a_row == 2
    assert run_sender(connection) == "sent 1"
    assert SendQueue.objects.get(pk=connection.pk).throttled_in_a_row == 0
    assert len(sent_copies(providers_on_sandbox, "google", outbound.message_id)) == 1


# -- one pending drain per mailbox ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_queueing_a_batch_asks_the_broker_for_one_drain_not_one_per_message(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    purge()
    for n in range(30):  # each queue_email commits on its own, as thirty clicks on Send would
        queue_email(author=bob, to=f"customer{n}@example.com", subject=f"Statement {n}", body="Attached.")
    assert broker_messages() == 1
    assert sweep() == 0  # a drain is pending: the sweep adds nothing
    assert broker_messages() == 1


def test_a_superseded_drain_task_does_nothing(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    outbound = queue(bob)
    SendQueue.objects.update_or_create(connection=connection, defaults={
        "drain_at": timezone.now(), "drain_generation": 7})
    assert send_queue(str(connection.pk), 6) == "superseded by a later request"
    assert not send_requests(providers_on_sandbox, "microsoft")
    assert send_queue(str(connection.pk), 7) == "sent 1"
    outbound.refresh_from_db()
    assert outbound.state == "sent"
    assert send_queue(str(connection.pk), 7) == "superseded by a later request"  # taken once


def test_a_lost_drain_is_handed_over_again_and_not_more_often_than_needed(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    queue(bob)
    purge()
    long_ago = timezone.now() - drain_lost_after() - dt.timedelta(seconds=5)
    SendQueue.objects.update_or_create(connection=connection, defaults={
        "drain_at": long_ago, "drain_generation": 3, "drain_enqueued_at": long_ago})
    assert sweep() == 1 and broker_messages() == 1  # the task was lost with its worker: again
    assert sweep() == 0 and broker_messages() == 1  # just handed over: not again at once


# -- a worker killed mid-send --------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("went_out", [True, False], ids=["went-out", "never-left"])
def test_a_message_left_sending_by_a_killed_worker_is_resolved_by_the_sweep(
    went_out: bool, providers_on_sandbox: SandboxProcess, bob: User, settings: Any,
) -> None:
    """The last queued message of a mailbox, its sender SIGKILLed mid-send: no broker redelivery is
    waited for (an hour, with Redis); the every-minute sweep finds it once the lease has lapsed."""
    settings.MAIL_SEND_VERIFY_DELAY_SECONDS = 0
    connection = connect_bob(client_for(bob), providers_on_sandbox, bob, "microsoft")
    # The send hangs at the provider while we kill its worker.
    providers_on_sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 30, "path": "sendMail"})
    with real_worker(queues="send") as worker:
        outbound = queue_email(author=bob, to="dana@example.com", subject="Your invoice", body="Attached.")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not OutboundEmail.objects.filter(pk=outbound.pk, state="sending"):
            time.sleep(0.1)
        time.sleep(1.0)  # claimed, the grant read, the request on its way
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert OutboundEmail.objects.get(pk=outbound.pk).state == "sending"
    providers_on_sandbox.control("DELETE", "/faults")
    if went_out:  # the provider did take it: put the copy it made in Sent
        raw = (f"From: bob@greenleaf.example\r\nTo: dana@example.com\r\nSubject: Your invoice\r\n"
               f"Message-ID: {outbound.message_id}\r\n\r\nAttached.\r\n")
        providers_on_sandbox.control("POST", "/accounts/microsoft/bob@greenleaf.example/messages",
                                     json={"folder": "Sent Items", "raw": raw})
    SendQueue.objects.filter(pk=connection.pk).update(lease_until=timezone.now())  # what ten minutes do
    purge()
    with real_worker(queues="send") as worker:
        assert sweep() == 1  # what beat's every-minute tick does
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and OutboundEmail.objects.get(pk=outbound.pk).state != "sent":
            assert worker.poll() is None
            time.sleep(0.2)
    outbound.refresh_from_db()
    assert outbound.state == "sent", outbound.last_error
    assert len(sent_copies(providers_on_sandbox, "microsoft", outbound.message_id)) == 1
    assert MailboxConnection.objects.get(pk=connection.pk).state == "connected"
