"""The Celery task the scheduler enqueues for each connection with Sync Calendar on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from accounts.grants import load_grant, store_grant
from accounts.models import MailboxConnection, SyncRun, User
from calendarsync.models import CalendarSyncState
from calendarsync.tasks import sync_calendar
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import make_event
from tests.mailboxes import connected_mailbox


@pytest.fixture
def bob_calendar(providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    return connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")


def test_the_task_syncs_and_records_a_calendar_run(bob_calendar: MailboxConnection,
                                                   providers_on_sandbox: SandboxProcess) -> None:
    make_event(providers_on_sandbox, bob_calendar, subject="Walkthrough", start="2026-12-01T09:00:00",
               end="2026-12-01T10:00:00")
    assert sync_calendar.apply(args=(str(bob_calendar.pk), "manual")).get() == "succeeded"
    run = SyncRun.objects.get(connection=bob_calendar, kind=SyncRun.Kind.CALENDAR)
    assert run.trigger == SyncRun.Trigger.MANUAL
    assert sync_calendar.name == "calendarsync.sync_calendar" and sync_calendar.queue == "calendar"


def test_a_throttled_sync_is_retried_after_the_providers_delay(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    countdowns: list[float] = []
    original = sync_calendar.retry

    def record(*args: object, **kwargs: object) -> object:
        countdowns.append(float(kwargs["countdown"]))  # type: ignore[arg-type]
        return original(*args, **kwargs)

    monkeypatch.setattr(sync_calendar, "retry", record)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 20,
                                                          "path": "^/calendar/v3"})
    assert sync_calendar.apply(args=(str(bob_calendar.pk),)).get() == "succeeded"  # eager: the retry runs at once
    assert len(countdowns) == 1 and 20 <= countdowns[0] <= 24


def test_no_retry_for_a_missing_connection_or_revoked_access(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    assert sync_calendar.apply(args=(str(uuid.uuid4()),)).get() == "gone"
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})
    # Make the stored access token due for refresh, so the refused refresh is met at once.
    connection = MailboxConnection.objects.get(pk=bob_calendar.pk)
    grant = load_grant(connection)
    store_grant(connection, dataclasses.replace(grant, expires_at=dt.datetime.now(dt.UTC)))
    connection.save()
    assert sync_calendar.apply(args=(str(bob_calendar.pk),)).get() == "failed: AuthRevoked"
    connection.refresh_from_db()
    assert connection.state == MailboxConnection.State.NEEDS_SIGNIN
    assert SyncRun.objects.get(connection=bob_calendar).outcome == SyncRun.Outcome.FAILED
    assert CalendarSyncState.objects.filter(connection=bob_calendar, lease_owner="").exists()
