"""Provider push makes a connection due within seconds of mail arriving in its Aspire folder."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, PushChannel, User
from mailsync.capture import run_capture
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime

TOPIC = "projects/aspire-test/topics/gmail"
PUSH_ACCOUNT = "gmail-push@aspire-test.iam.gserviceaccount.com"


@pytest.fixture
def push_settings(settings: Any, live_server: Any, providers_on_sandbox: SandboxProcess) -> SandboxProcess:
    settings.PUSH_BASE_URL = live_server.url
    settings.GOOGLE_PUBSUB_TOPIC = TOPIC
    settings.GOOGLE_PUBSUB_SERVICE_ACCOUNT = PUSH_ACCOUNT
    settings.GOOGLE_PUBSUB_CERTS_URL = f"{providers_on_sandbox.base_url}/oauth2/v1/certs"
    providers_on_sandbox.control("PUT", f"/pubsub/topics/{TOPIC}", json={
        "push_endpoint": f"{live_server.url}/hooks/google/pubsub/", "service_account_email": PUSH_ACCOUNT})
    return providers_on_sandbox


def wait_until_due(connection: MailboxConnection, seconds: float = 10) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        connection.refresh_from_db()
        if connection.next_sync_at and connection.next_sync_at <= timezone.now():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("the connection did not become due")


def mail_channel(connection: MailboxConnection) -> PushChannel:
    return PushChannel.objects.get(connection=connection, purpose=PushChannel.Purpose.MAIL)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_mail_dragged_into_aspire_makes_the_connection_due(provider: str, push_settings: SandboxProcess,
                                                           bob: User) -> None:
    connection = connected_mailbox(push_settings, bob, provider, "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")  # the folders, and the channel on Aspire
    channel = mail_channel(connection)
    assert channel.channel_id and channel.expires_at and channel.expires_at > timezone.now() + dt.timedelta(days=1)
    assert channel.lifecycle == (provider == "microsoft")
    before = len(push_settings.control("GET", "/requests")["requests"])
    run_capture(connection_id=connection.pk, owner="again")  # a fresh channel: no set-up call
    calls = push_settings.control("GET", "/requests")["requests"][before:]
    assert not [r for r in calls if "subscriptions" in r["path"] or r["path"].endswith("/watch")]

    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + dt.timedelta(hours=1))
    drop(push_settings, provider, "bob@greenleaf.example", mime("Pushed in"))
    wait_until_due(connection)


@pytest.mark.django_db(transaction=True)
def test_a_graph_subscription_is_renewed_before_it_expires(push_settings: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(push_settings, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    channel = mail_channel(connection)
    PushChannel.objects.filter(pk=channel.pk).update(expires_at=timezone.now() + dt.timedelta(hours=3))
    run_capture(connection_id=connection.pk, owner="renew")
    renewed = mail_channel(connection)
    assert renewed.channel_id == channel.channel_id
    assert renewed.expires_at and renewed.expires_at > timezone.now() + dt.timedelta(days=2)
    renewals = [r for r in push_settings.control("GET", "/requests")["requests"]
                if r["method"] == "PATCH" and "/subscriptions/" in r["path"]]
    assert len(renewals) == 1
