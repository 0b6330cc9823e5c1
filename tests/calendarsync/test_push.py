"""Provider push makes a connection due within seconds of a change in its calendar."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import MailboxConnection, User
from calendarsync.models import CalendarSyncState
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import calendar_requests, make_event, sync
from tests.mailboxes import connected_mailbox

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def push_on(settings: Any, live_server: Any, providers_on_sandbox: SandboxProcess) -> SandboxProcess:
    settings.PUSH_BASE_URL = live_server.url
    return providers_on_sandbox


def wait_until_due(connection: MailboxConnection, seconds: float = 10) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        connection.refresh_from_db()
        if connection.next_sync_at and connection.next_sync_at <= timezone.now():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("the connection did not become due")


def not_due(connection: MailboxConnection) -> None:
    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + dt.timedelta(hours=1))


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_change_in_the_calendar_makes_the_connection_due(provider: str, push_on: SandboxProcess,
                                                           bob: User) -> None:
    connection = connected_mailbox(push_on, bob, provider, "bob@greenleaf.example")
    sync(connection)  # the run sets the watch up
    state = CalendarSyncState.objects.get(connection=connection)
    assert state.watch_id and state.watch_expires_at
    assert state.watch_expires_at > timezone.now() + dt.timedelta(days=1)
    since = time.time()
    sync(connection)  # a fresh watch needs no provider call: the idle run stays at one request
    assert len(calendar_requests(push_on, "bob@greenleaf.example", since)) == 1

    not_due(connection)
    day = (timezone.now() + dt.timedelta(days=2)).date()
    make_event(push_on, connection, subject="Pushed in", start=f"{day}T09:00:00", end=f"{day}T10:00:00")
    assert wait_until_due(connection) < 5

    # Renewal a day before expiry keeps one watch alive.
    CalendarSyncState.objects.filter(pk=state.pk).update(watch_expires_at=timezone.now() + dt.timedelta(hours=2))
    sync(connection)
    renewed = CalendarSyncState.objects.get(pk=state.pk)
    assert renewed.watch_expires_at and renewed.watch_expires_at > timezone.now() + dt.timedelta(days=1)


def test_forged_notifications_are_ignored(push_on: SandboxProcess, bob: User, live_server: Any) -> None:
    connection = connected_mailbox(push_on, bob, "microsoft", "bob@greenleaf.example")
    sync(connection)
    state = CalendarSyncState.objects.get(connection=connection)
    not_due(connection)
    client = Client()
    forged = {"value": [{"subscriptionId": state.watch_id, "clientState": "guessed", "changeType": "updated"}]}
    assert client.post("/hooks/microsoft/calendar/", forged, content_type="application/json").status_code == 202
    assert client.post("/hooks/google/calendar/", headers={
        "X-Goog-Channel-ID": state.watch_id, "X-Goog-Channel-Token": "guessed", "X-Goog-Resource-State": "exists",
    }).status_code == 200
    connection.refresh_from_db()
    assert connection.next_sync_at and connection.next_sync_at > timezone.now()
    echoed = client.post("/hooks/microsoft/calendar/?validationToken=abc%20123")
    assert echoed.content == b"abc 123" and echoed["Content-Type"].startswith("text/plain")
