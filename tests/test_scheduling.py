"""Every connection syncs at least hourly, at its own minute; "Sync now" brings it forward."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Company, MailboxConnection, User
from activities.models import Activity
from aspire_sync.scheduling import dispatch_due, next_hourly_sync, spread_offset
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker


def test_hourly_syncs_are_spread_over_the_hour(greenleaf: Company) -> None:
    minutes = {int(spread_offset(i).total_seconds() // 60) for i in range(300)}
    assert len(minutes) > 50  # 300 connections land on most minutes of the hour, not all on :00
    start = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    connection = MailboxConnection(pk="5b0e4a52-52e6-4bb8-a1a2-0d4a53c0c3a1")
    first = next_hourly_sync(connection, start)
    assert start < first <= start + dt.timedelta(hours=1)
    assert next_hourly_sync(connection, first) == first + dt.timedelta(hours=1)


def test_dispatch_claims_each_due_connection_once(greenleaf: Company, bob: User, alice: User) -> None:
    now = timezone.now()
    due = MailboxConnection.objects.create(company=greenleaf, user=bob, provider="google",
                                           mailbox_address="bob@greenleaf.example", state="connected",
                                           sync_email=True, sync_aspire_folder=True,
                                           next_sync_at=now - dt.timedelta(minutes=1))
    MailboxConnection.objects.create(company=greenleaf, user=alice, provider="google",
                                     mailbox_address="alice@greenleaf.example", state="connected",
                                     next_sync_at=now + dt.timedelta(minutes=30))
    due.sync_calendar = True
    due.save(update_fields=["sync_calendar"])
    assert dispatch_due() == 1
    due.refresh_from_db()
    assert now < due.next_sync_at <= now + dt.timedelta(hours=1)
    assert dispatch_due() == 0  # claimed: a second dispatcher finds nothing to do


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sync_now_brings_dragged_mail_in_within_seconds(providers_on_sandbox: SandboxProcess, bob: User,
                                                        contact: Any) -> None:
    """Through a real Celery worker: press Sync now, and the mail dragged into Aspire shows up."""
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    with real_worker():
        # The connection's first run makes the folders; then the user drags mail into Aspire.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not connection.runs.filter(finished_at__isnull=False).exists():
            client_for(bob).post("/settings/mailbox/sync-now/")
            time.sleep(1)
        drop(providers_on_sandbox, "microsoft", "bob@greenleaf.example", mime("Dragged in just now"))
        pressed = time.monotonic()
        client_for(bob).post("/settings/mailbox/sync-now/")
        while time.monotonic() - pressed < 30 and not Activity.objects.filter(subject="Dragged in just now").exists():
            time.sleep(0.2)
        elapsed = time.monotonic() - pressed
        assert Activity.objects.filter(subject="Dragged in just now").exists()
        print(f"Sync now to the Activity: {elapsed:.1f} s")
