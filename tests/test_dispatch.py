"""Dispatching at scale: the whole backlog in pages over one producer, companies taking turns, each
connection claimed once."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Company, MailboxConnection, SyncRun, User
from aspire_sync.celery import app
from aspire_sync.scheduling import dispatch_due
from aspire_sync.tasks import dispatch_due_syncs
from mailsync.models import EmailSource
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker


@pytest.fixture
def broker() -> Iterator[None]:
    purge()
    yield
    purge()


def purge() -> None:
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        for queue in ("default", "mail", "calendar"):
            channel.queue_purge(queue)


def published(queue: str) -> list[tuple[str, str]]:
    """The tasks waiting in a queue, oldest first: (task name, first argument or keyword arguments)."""
    tasks = []
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args, kwargs, _embed = message.decode()
            tasks.append((message.headers["task"], args[0] if args else repr(kwargs)))
    return tasks


def due_connections(company: Company, count: int, *, overdue_by: dt.timedelta,
                    calendar: bool = False) -> list[str]:
    now = timezone.now()
    users = User.objects.bulk_create(
        User(email=f"user{n}@{company.name.lower()}.example", company=company, full_name=f"User {n}", password="!")
        for n in range(count))
    connections = MailboxConnection.objects.bulk_create(
        MailboxConnection(company=company, user=user, provider="google", mailbox_address=user.email,
                          state=MailboxConnection.State.CONNECTED, sync_email=True, sync_aspire_folder=True,
                          sync_calendar=calendar, next_sync_at=now - overdue_by + dt.timedelta(seconds=n))
        for n, user in enumerate(users))
    return [str(c.pk) for c in connections]


@pytest.mark.django_db(transaction=True)
def test_one_dispatch_publishes_the_whole_backlog_with_companies_taking_turns(broker: None) -> None:
    big = Company.objects.create(name="Bigyard")
    small = Company.objects.create(name="Smallyard")
    # The large company's backlog is older than anything of the small one's: by age alone, the
    # small company would wait for all of it.
    big_ids = due_connections(big, 25, overdue_by=dt.timedelta(minutes=50), calendar=True)
    small_ids = due_connections(small, 3, overdue_by=dt.timedelta(minutes=5))
    MailboxConnection.objects.create(
        company=small, user=User.objects.create(email="later@smallyard.example", company=small, password="!"),
        provider="google", mailbox_address="later@smallyard.example", state="connected", sync_email=True,
        sync_aspire_folder=True, next_sync_at=timezone.now() + dt.timedelta(minutes=20))

    assert dispatch_due(batch=10) == 28  # three pages of ten in one dispatch, not one page a tick

    mail = published("mail")
    assert sorted(connection for _, connection in mail) == sorted(big_ids + small_ids)
    assert {task for task, _ in mail} == {"mailsync.capture_mailbox"}
    first_six = [connection for _, connection in mail[:6]]
    assert set(small_ids) <= set(first_six), "the small company's connections wait behind the large one's"
    assert sorted(connection for _, connection in published("calendar")) == sorted(big_ids)
    # Claimed: each moved to its next hourly slot, so a second dispatcher finds nothing to do.
    assert dispatch_due(batch=10) == 0
    assert published("mail") == []
    assert not MailboxConnection.objects.filter(next_sync_at__lte=timezone.now()).exists()


@pytest.mark.django_db(transaction=True)
def test_a_backlog_longer_than_the_budget_is_handed_to_a_new_dispatch_task(broker: None) -> None:
    company = Company.objects.create(name="Bigyard")
    due_connections(company, 5, overdue_by=dt.timedelta(minutes=30))
    # A budget already spent: one page, then the rest goes to a dispatch task of its own.
    assert dispatch_due(batch=2, budget=0) == 2
    assert len(published("mail")) == 2
    assert published("default") == [("sync.dispatch_due", repr({"trigger": "schedule"}))]
    # That task (run here as a worker would) carries on where this one stopped.
    assert dispatch_due(batch=2) == 3
    assert len(published("mail")) == 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_threaded_worker_runs_many_connections_at_once_and_each_one_once_at_a_time(
        providers_on_sandbox: SandboxProcess, alice: User, bob: User, carol: User) -> None:
    """A worker with a pool of threads, dispatched to by the dispatch task: every connection's mail
    captured exactly once, though some connections are enqueued three times at once, and no
    connection ever runs twice at the same time (the lease)."""
    sandbox = providers_on_sandbox
    mailboxes = [(alice, "microsoft", "alice@greenleaf.example"), (bob, "google", "bob@greenleaf.example"),
                 (carol, "microsoft", "carol@summit.example")]
    connections = [connected_mailbox(sandbox, user, provider, address) for user, provider, address in mailboxes]
    with real_worker(queues="default,mail", pool="threads", concurrency=6):
        # The first runs make the Aspire folders; then mail is dragged in, behind a slow network.
        MailboxConnection.objects.update(next_sync_at=timezone.now())
        dispatch_due_syncs.delay()
        wait_for(lambda: all(c.runs.filter(outcome=SyncRun.Outcome.SUCCEEDED).exists() for c in connections))
        for _user, provider, address in mailboxes:
            for n in range(3):
                drop(sandbox, provider, address, mime(f"{address} #{n}", to=address))
        sandbox.control("POST", "/latency", json={"latency_ms": 150})
        try:
            since = timezone.now()
            MailboxConnection.objects.update(next_sync_at=timezone.now())
            dispatch_due_syncs.delay()
            for connection in connections[:2]:  # "Sync now" twice more while the dispatch runs
                for _ in range(2):
                    capture_mailbox.delay(str(connection.pk), SyncRun.Trigger.MANUAL)
            wait_for(lambda: EmailSource.objects.count() == 9
                     and not SyncRun.objects.filter(outcome=SyncRun.Outcome.RUNNING).exists())
        finally:
            sandbox.control("POST", "/latency", json={"latency_ms": 0})

    for connection in connections:
        assert EmailSource.objects.filter(connection=connection).count() == 3
        runs = list(connection.runs.filter(started_at__gte=since).order_by("started_at")
                    .values_list("started_at", "finished_at"))
        assert runs, connection
        for (_, finished), (started, _) in itertools.pairwise(runs):
            assert finished is not None and finished <= started, f"two runs of {connection} at once: {runs}"
    # The connections did run side by side: the worker had several runs in flight at once.
    spans = [(start, end) for start, end in SyncRun.objects.filter(started_at__gte=since)
             .values_list("started_at", "finished_at") if end is not None]
    assert any(a_start < b_end and b_start < a_end
               for (a_start, a_end), (b_start, b_end) in itertools.combinations(spans, 2))


def wait_for(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
