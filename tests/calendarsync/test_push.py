"""Provider push makes a connection due within seconds of a change in its calendar."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, PushChannel, User
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import calendar_requests, make_event, sync
from tests.conftest import client_for
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


def calendar_channel(connection: MailboxConnection) -> PushChannel:
    return PushChannel.objects.get(connection=connection, purpose=PushChannel.Purpose.CALENDAR)


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_change_in_the_calendar_makes_the_connection_due(provider: str, push_on: SandboxProcess,
                                                           bob: User) -> None:
    connection = connected_mailbox(push_on, bob, provider, "bob@greenleaf.example")
    sync(connection)  # the run sets the watch up
    channel = calendar_channel(connection)
    assert channel.channel_id and channel.expires_at
    assert channel.expires_at > timezone.now() + dt.timedelta(days=1)
    since = time.time()
    sync(connection)  # a fresh watch needs no provider call: the idle run stays at one request
    assert len(calendar_requests(push_on, "bob@greenleaf.example", since)) == 1

    not_due(connection)
    day = (timezone.now() + dt.timedelta(days=2)).date()
    make_event(push_on, connection, subject="Pushed in", start=f"{day}T09:00:00", end=f"{day}T10:00:00")
    wait_until_due(connection)

    # Renewal a day before expiry keeps one watch alive.
    PushChannel.objects.filter(pk=channel.pk).update(expires_at=timezone.now() + dt.timedelta(hours=2))
    sync(connection)
    renewed = calendar_channel(connection)
    assert renewed.expires_at and renewed.expires_at > timezone.now() + dt.timedelta(days=1)


def test_a_failed_set_up_waits_before_the_next_try(push_on: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(push_on, bob, "microsoft", "bob@greenleaf.example")
    push_on.control("POST", "/faults", json={"kind": "status", "status": 503, "path": "/v1.0/subscriptions$",
                                             "method": "POST", "count": 10})
    sync(connection)
    channel = calendar_channel(connection)
    assert not channel.channel_id and channel.failed_at is not None
    since = time.time()
    sync(connection)  # backing off: the idle run stays at one calendar request
    assert len(calendar_requests(push_on, "bob@greenleaf.example", since)) == 1


def live_channels(sandbox: SandboxProcess, connection: MailboxConnection) -> list[Any]:
    if connection.provider == "microsoft":
        listed = sandbox.control("GET", f"/microsoft/{connection.mailbox_address}/subscriptions")["subscriptions"]
        now = dt.datetime.now(dt.UTC)
        return [s for s in listed if dt.datetime.fromisoformat(s["expirationDateTime"].replace("Z", "+00:00")) > now]
    return list(sandbox.control("GET", f"/google/{connection.mailbox_address}/calendar-channels")["channels"])


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_disconnecting_stops_the_calendars_channel_at_the_provider(provider: str, push_on: SandboxProcess,
                                                                   bob: User) -> None:
    connection = connected_mailbox(push_on, bob, provider, "bob@greenleaf.example")
    sync(connection)
    assert len(live_channels(push_on, connection)) == 1
    assert client_for(bob).post("/settings/mailbox/disconnect/").status_code == 302
    connection.refresh_from_db()
    assert connection.state == MailboxConnection.State.DISCONNECTED
    assert live_channels(push_on, connection) == []
    assert not PushChannel.objects.filter(connection=connection).exists()
