"""Dispatching at scale: the whole backlog in pages over one producer, companies taking turns, each
connection claimed once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Company, MailboxConnection, User
from aspire_sync.celery import app
from aspire_sync.scheduling import dispatch_due


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
