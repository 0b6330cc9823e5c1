"""Push, as an attacker and as the providers see it: every webhook answers at once, never with a
500, whatever the body; forged, oversized and replayed notifications change nothing; Gmail pushes
are authenticated by the token Pub/Sub signs (the sandbox signs them the same way, with its own
key); Graph subscriptions are made with lifecycle notifications, and each lifecycle event is acted on.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import MailboxConnection, PushChannel, User
from mailsync.capture import run_capture
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.sandbox.google_support import Delivery, push_receiver
from tests.workers import real_worker

TOPIC = "projects/aspire-test/topics/gmail"
PUSH_ACCOUNT = "gmail-push@aspire-test.iam.gserviceaccount.com"
GRAPH_HOOKS = ["/hooks/microsoft/mail/", "/hooks/microsoft/calendar/", "/hooks/microsoft/lifecycle/"]
ALL_HOOKS = [*GRAPH_HOOKS, "/hooks/google/calendar/", "/hooks/google/pubsub/"]
MALFORMED = [
    b'{"value": "abc"}', b'{"value": [1]}', b'{"value": [null]}', b'{"value": 5}', b"[1]", b"[null]", b"5",
    b'"x"', b"null", b"{}", b"not json", b"", b"\xff\xfe\x00garbage", b'{"value": {"a": 1}}',
    b'{"value": [{"subscriptionId": 5, "clientState": []}]}', b'{"value": [{"subscriptionId": {"a": 1}}]}',
    b'{"value": [{"subscriptionId": ["x"], "clientState": null, "lifecycleEvent": 7}]}',
    b'{"message": {"data": "!!!", "messageId": 5}}', b'{"message": {"data": "e30=", "messageId": "1"}}',
    b'{"message": null}', b'{"message": {"data": "eyJlbWFpbEFkZHJlc3MiOiBbMV19", "messageId": "2"}}',
]


def wait_until(condition: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


NOT_DUE = dt.timedelta(hours=2)


def is_due(connection: MailboxConnection) -> bool:
    """Made due by a notification: due now, or already dispatched by a worker running the
    dispatcher (which moves it to its next hourly slot, sooner than ``not_due`` put it)."""
    connection.refresh_from_db()
    soon = timezone.now() + NOT_DUE - dt.timedelta(minutes=1)
    return bool(connection.next_sync_at and connection.next_sync_at <= soon)


def not_due(connection: MailboxConnection) -> None:
    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() + NOT_DUE)


def post(client: Client, url: str, body: bytes, **headers: str) -> Any:
    return client.generic("POST", url, body, content_type="application/json", headers=headers)


@pytest.fixture
def push_on(settings: Any, live_server: Any, providers_on_sandbox: SandboxProcess) -> SandboxProcess:
    settings.PUSH_BASE_URL = live_server.url
    settings.GOOGLE_PUBSUB_TOPIC = TOPIC
    settings.GOOGLE_PUBSUB_SERVICE_ACCOUNT = PUSH_ACCOUNT
    settings.GOOGLE_PUBSUB_CERTS_URL = f"{providers_on_sandbox.base_url}/oauth2/v1/certs"
    return providers_on_sandbox


@pytest.fixture
def gmail_push(push_on: SandboxProcess, settings: Any, bob: User) -> tuple[MailboxConnection, Delivery]:
    """Bob's Gmail connected with push, and one real push as Pub/Sub (the sandbox) sent it."""
    connection = connected_mailbox(push_on, bob, "google", "bob@greenleaf.example")
    with push_receiver() as (url, received):
        push_on.control("PUT", f"/pubsub/topics/{TOPIC}", json={"push_endpoint": url,
                                                                "service_account_email": PUSH_ACCOUNT})
        settings.GOOGLE_PUBSUB_AUDIENCE = url  # Pub/Sub's default audience: the push endpoint
        run_capture(connection_id=connection.pk, owner="setup")  # the Aspire label and the watch
        drop(push_on, "google", "bob@greenleaf.example", mime("Pushed in"))
        delivery = received.get(timeout=10)
    return connection, delivery


@pytest.mark.django_db(transaction=True)
def test_a_gmail_push_counts_once_and_its_replays_are_dropped(gmail_push: tuple[MailboxConnection, Delivery]) -> None:
    connection, delivery = gmail_push
    assert delivery.headers["Authorization"].startswith("Bearer ")
    assert "?" not in delivery.path  # no secret in the URL
    client = Client()
    not_due(connection)
    assert post(client, "/hooks/google/pubsub/", delivery.body,
                Authorization=delivery.headers["Authorization"]).status_code == 204
    assert is_due(connection)
    runs_requested = 0
    for _ in range(30):
        not_due(connection)
        assert post(client, "/hooks/google/pubsub/", delivery.body,
                    Authorization=delivery.headers["Authorization"]).status_code == 204
        runs_requested += is_due(connection)
    assert runs_requested == 0


@pytest.mark.django_db(transaction=True)
def test_a_gmail_push_without_googles_signature_is_refused(gmail_push: tuple[MailboxConnection, Delivery],
                                                            settings: Any) -> None:
    connection, delivery = gmail_push
    token = delivery.headers["Authorization"][7:]
    header, claims, signature = token.split(".")
    body = delivery.body.replace(b'"messageId": "', b'"messageId": "9')  # a message not seen yet
    client = Client()
    not_due(connection)
    refused = [
        {},  # no token
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {header}.{claims}.{signature[:-4]}AAAA"},  # tampered signature
        {"Authorization": f"Basic {token}"},
    ]
    for headers in refused:
        assert post(client, "/hooks/google/pubsub/", body, **headers).status_code == 403, headers
    # The old fixed token in the URL means nothing.
    assert post(client, "/hooks/google/pubsub/?token=demo-pubsub-token", body).status_code == 403
    # A real token for another audience, or from another service account, is refused too.
    audience = settings.GOOGLE_PUBSUB_AUDIENCE
    settings.GOOGLE_PUBSUB_AUDIENCE = "https://elsewhere.example/hooks/google/pubsub/"
    assert post(client, "/hooks/google/pubsub/", body, Authorization=f"Bearer {token}").status_code == 403
    settings.GOOGLE_PUBSUB_AUDIENCE = audience
    settings.GOOGLE_PUBSUB_SERVICE_ACCOUNT = "someone-else@aspire-test.iam.gserviceaccount.com"
    assert post(client, "/hooks/google/pubsub/", body, Authorization=f"Bearer {token}").status_code == 403
    assert not is_due(connection)


@pytest.mark.django_db(transaction=True)
def test_no_body_on_any_hook_gives_a_500(gmail_push: tuple[MailboxConnection, Delivery]) -> None:
    _, delivery = gmail_push
    client = Client(raise_request_exception=False)
    for url in ALL_HOOKS:
        for body in MALFORMED:
            headers = {"Authorization": delivery.headers["Authorization"]} if "pubsub" in url else {}
            response = post(client, url, body, **headers)
            assert response.status_code in (200, 202, 204, 400), (url, body, response.status_code)
            assert b"Traceback" not in response.content
    # Headers a forger makes up on the calendar channel hook change nothing either.
    odd = {"X-Goog-Channel-ID": "\u00e9" * 300, "X-Goog-Channel-Token": "", "X-Goog-Resource-State": "exists"}
    assert client.post("/hooks/google/calendar/", headers=odd).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", GRAPH_HOOKS)
def test_a_flood_of_notifications_is_answered_at_once(url: str, bob: User, greenleaf: Any,
                                                      django_assert_max_num_queries: Any) -> None:
    connection = MailboxConnection.objects.create(company=greenleaf, user=bob, provider="microsoft",
                                                  mailbox_address=bob.email, state="connected")
    PushChannel.objects.create(connection=connection, purpose="mail", channel_id="sub-1", secret="the-real-secret")
    not_due(connection)
    client = Client()
    # About 1 MiB, 13,000 items: refused before it is read.
    flood = json.dumps({"value": [{"subscriptionId": f"sub-{n}", "clientState": "x"} for n in range(13_000)]})
    started = time.monotonic()
    assert post(client, url, flood.encode()).status_code == 413
    assert time.monotonic() - started < 1
    # Within the size limit but more notifications than Graph sends at once: refused too.
    many = json.dumps({"value": [{"subscriptionId": "s"} for _ in range(1_000)]})
    assert post(client, url, many.encode()).status_code == 413
    # A full batch of forged ones: one query for all of them, ignored.
    forged = json.dumps({"value": [{"subscriptionId": "sub-1", "clientState": f"guess-{n}", "changeType": "created"}
                                   for n in range(100)]})
    started = time.monotonic()
    with django_assert_max_num_queries(1):
        assert post(client, url, forged.encode()).status_code == 202
    assert time.monotonic() - started < 1
    assert not is_due(connection)
    # The real secret, for a connection still connected, is the only thing that counts...
    real = json.dumps({"value": [{"subscriptionId": "sub-1", "clientState": "the-real-secret"}]})
    assert post(client, url, real.encode()).status_code == 202
    assert is_due(connection)
    # ...and not once the connection is gone.
    not_due(connection)
    MailboxConnection.objects.filter(pk=connection.pk).update(state="disconnected")
    assert post(client, url, real.encode()).status_code == 202
    connection.refresh_from_db()
    assert connection.next_sync_at and connection.next_sync_at > timezone.now()
    # The subscription handshake echoes the token as plain text.
    handshake = client.post(f"{url}?validationToken=abc%20123")
    assert handshake.content == b"abc 123" and handshake["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_forged_calendar_channel_notifications_are_ignored(bob: User, greenleaf: Any) -> None:
    connection = MailboxConnection.objects.create(company=greenleaf, user=bob, provider="google",
                                                  mailbox_address=bob.email, state="connected", sync_calendar=True)
    PushChannel.objects.create(connection=connection, purpose="calendar", channel_id="chan-1",
                               resource_id="res-1", secret="the-real-token")
    not_due(connection)
    client = Client()
    for token, resource in (("guessed", "res-1"), ("the-real-token", "res-2"), ("", "res-1")):
        assert client.post("/hooks/google/calendar/", headers={
            "X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": token, "X-Goog-Resource-ID": resource,
            "X-Goog-Resource-State": "exists"}).status_code == 200
    assert not is_due(connection)
    assert client.post("/hooks/google/calendar/", headers={
        "X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": "the-real-token", "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": "exists"}).status_code == 200
    assert is_due(connection)


# -- Graph lifecycle notifications -----------------------------------------------------------


def graph_subscriptions(sandbox: SandboxProcess, email: str) -> dict[str, dict[str, Any]]:
    listed = sandbox.control("GET", f"/microsoft/{email}/subscriptions")["subscriptions"]
    return {s["id"]: s for s in listed}


@pytest.mark.django_db(transaction=True)
def test_a_subscription_made_without_lifecycle_notifications_is_replaced(push_on: SandboxProcess,
                                                                         bob: User) -> None:
    connection = connected_mailbox(push_on, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    channel = PushChannel.objects.get(connection=connection, purpose="mail")
    made = graph_subscriptions(push_on, bob.email)[channel.channel_id]
    assert made["lifecycleNotificationUrl"].endswith("/hooks/microsoft/lifecycle/")
    # As every subscription made before lifecycle notifications were asked for: one without.
    PushChannel.objects.filter(pk=channel.pk).update(lifecycle=False)
    run_capture(connection_id=connection.pk, owner="renewal")
    replaced = PushChannel.objects.get(pk=channel.pk)
    assert replaced.channel_id != channel.channel_id and replaced.lifecycle
    remaining = graph_subscriptions(push_on, bob.email)
    assert replaced.channel_id in remaining and channel.channel_id not in remaining


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_each_lifecycle_event_is_acted_on(push_on: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(push_on, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    first = PushChannel.objects.get(connection=connection, purpose="mail")
    assert first.lifecycle

    def lifecycle(event: str) -> None:
        not_due(connection)
        push_on.control("POST", f"/microsoft/{bob.email}/lifecycle", json={"event": event,
                                                                           "subscription_id": current().channel_id})

    def current() -> PushChannel:
        return PushChannel.objects.get(pk=first.pk)

    # missed: some change notifications were not delivered, so sync now.
    lifecycle("missed")
    wait_until(lambda: is_due(connection))

    with real_worker(queues="default", hostname="push-worker@%h"):
        # subscriptionRemoved: Graph dropped it; a new one is made, then the connection syncs.
        lifecycle("subscriptionRemoved")
        wait_until(lambda: current().channel_id not in ("", first.channel_id) and is_due(connection))
        assert current().channel_id in graph_subscriptions(push_on, bob.email) and current().lifecycle

        # reauthorizationRequired: renewing (PATCH) reauthorizes it.
        since = time.time()
        lifecycle("reauthorizationRequired")

        def renewed() -> bool:
            log = push_on.control("GET", "/requests", params={"since": since})["requests"]
            return any(r["method"] == "PATCH" and current().channel_id in r["path"] for r in log)

        wait_until(renewed)
