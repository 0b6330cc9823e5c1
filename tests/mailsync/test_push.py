"""Provider push makes a connection due within seconds of mail arriving in its Aspire folder."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import MailboxConnection, User
from mailsync.capture import run_capture
from mailsync.models import MailSyncState
from mailsync.push import ensure_push
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime

TOPIC = "projects/aspire-test/topics/gmail"
PUSH_TOKEN = "push-token-for-tests"


@pytest.fixture
def push_settings(settings: Any, live_server: Any, providers_on_sandbox: SandboxProcess) -> SandboxProcess:
    settings.PUSH_BASE_URL = live_server.url
    settings.GOOGLE_PUBSUB_TOPIC = TOPIC
    settings.GOOGLE_PUBSUB_PUSH_TOKEN = PUSH_TOKEN
    providers_on_sandbox.control("PUT", f"/pubsub/topics/{TOPIC}", json={
        "push_endpoint": f"{live_server.url}/hooks/google/pubsub/?token={PUSH_TOKEN}"})
    return providers_on_sandbox


def wait_until_due(connection: MailboxConnection, seconds: float = 10) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        connection.refresh_from_db()
        if connection.next_sync_at and connection.next_sync_at <= timezone.now():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("the connection did not become due")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_mail_dragged_into_aspire_makes_the_connection_due(provider: str, push_settings: SandboxProcess,
                                                           bob: User) -> None:
    connection = connected_mailbox(push_settings, bob, provider, "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")  # the folders
    assert ensure_push(connection_id=connection.pk)
    state = MailSyncState.objects.get(connection=connection)
    assert state.push_id and state.push_expires_at and state.push_expires_at > timezone.now() + dt.timedelta(days=1)
    assert not ensure_push(connection_id=connection.pk)  # fresh: no provider call

    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + dt.timedelta(hours=1))
    drop(push_settings, provider, "bob@greenleaf.example", mime("Pushed in"))
    assert wait_until_due(connection) < 5


@pytest.mark.django_db(transaction=True)
def test_a_graph_subscription_is_renewed_before_it_expires(push_settings: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(push_settings, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    ensure_push(connection_id=connection.pk)
    state = MailSyncState.objects.get(connection=connection)
    MailSyncState.objects.filter(pk=state.pk).update(push_expires_at=timezone.now() + dt.timedelta(hours=3))
    assert ensure_push(connection_id=connection.pk)
    state.refresh_from_db()
    assert state.push_expires_at > timezone.now() + dt.timedelta(days=2)
    renewals = [r for r in push_settings.control("GET", "/requests")["requests"]
                if r["method"] == "PATCH" and "/subscriptions/" in r["path"]]
    assert len(renewals) == 1


def test_forged_notifications_are_ignored(db: None, bob: User, greenleaf: Any, settings: Any) -> None:
    settings.GOOGLE_PUBSUB_PUSH_TOKEN = PUSH_TOKEN
    connection = MailboxConnection.objects.create(
        company=greenleaf, user=bob, provider="microsoft", mailbox_address="bob@greenleaf.example",
        state="connected", sync_email=True, sync_aspire_folder=True,
        next_sync_at=timezone.now() + dt.timedelta(hours=1))
    MailSyncState.objects.create(connection=connection, aspire_folder_id="f", push_id="sub-1",
                                 push_secret="the-real-secret")
    client = Client()
    forged = {"value": [{"subscriptionId": "sub-1", "clientState": "guessed", "changeType": "created"}]}
    assert client.post("/hooks/microsoft/mail/", json.dumps(forged), content_type="application/json").status_code == 202
    data = base64.b64encode(json.dumps({"emailAddress": "bob@greenleaf.example", "historyId": 5}).encode()).decode()
    response = client.post("/hooks/google/pubsub/?token=wrong", json.dumps({"message": {"data": data}}),
                           content_type="application/json")
    assert response.status_code == 403
    connection.refresh_from_db()
    assert connection.next_sync_at > timezone.now()  # not made due
    # The validation handshake echoes the token as plain text.
    handshake = client.post("/hooks/microsoft/mail/?validationToken=abc%20123")
    assert handshake.content == b"abc 123" and handshake["Content-Type"].startswith("text/plain")
