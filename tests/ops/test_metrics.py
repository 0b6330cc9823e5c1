"""/metrics, scraped as Prometheus would, after a real capture run through a real worker against
the sandbox: runs by kind, provider and outcome, their duration, the push-to-Activity latency, the
throttle the provider answered and its Retry-After, queue depth, connections by state, tokens."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from accounts.grants import fresh_grant
from accounts.mailbox import request_sync
from accounts.models import MailboxConnection, SyncRun, User
from activities.models import Activity
from aspire_sync.celery import app
from crm.models import Contact
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

TOKEN = "metrics-scraper-token-for-tests"
EMAIL = "bob@greenleaf.example"


def scrape(token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition: Any, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    refused = Client().get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_sync_run_shows_in_the_scraped_metrics(
    providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, metrics_on: None,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")  # makes the Aspire and Processed folders
    before = scrape()

    drop(sandbox, "microsoft", EMAIL, mime("Mulch delivery"))
    # The provider answers the run's first Graph call with 429 and Retry-After: 2.
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 2,
                                             "account": EMAIL, "path": "/v1.0/", "count": 1})
    with real_worker(queues="default,mail", hostname="metrics-worker@%h"):
        request_sync(connection=connection, trigger=SyncRun.Trigger.PUSH)
        wait_for(lambda: Activity.objects.filter(subject="Mulch delivery").exists()
                 and SyncRun.objects.filter(trigger="push", outcome="succeeded").exists())
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runs = {"kind": "mail", "provider": "microsoft"}
    assert grew("aspire_sync_runs_total", **runs, outcome="retrying") == 1
    assert grew("aspire_sync_runs_total", **runs, outcome="succeeded") == 1
    assert grew("aspire_sync_run_duration_seconds_count", **runs) == 2
    assert grew("aspire_sync_run_duration_seconds_sum", **runs) > 0
    assert grew("aspire_push_to_activity_seconds_count", **runs) == 1
    # At least the 2 s the provider asked the run to wait.
    assert grew("aspire_push_to_activity_seconds_sum", **runs) >= 2
    assert grew("aspire_provider_throttled_total", provider="microsoft", work="mail") == 1
    assert grew("aspire_provider_retry_after_seconds_sum", provider="microsoft") == 2
    assert value(after, "aspire_connections", state="connected") == 1
    assert value(after, "aspire_connections", state="needs_signin") == 0
    # django-prometheus's request metrics are there too (the scrape before this one, at least).
    assert value(after, "django_http_requests_before_middlewares_total") > 0


@pytest.mark.django_db(transaction=True)
def test_queue_depth_is_read_from_the_broker_when_scraped(metrics_on: None) -> None:
    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("calendar")
    for _ in range(3):  # no worker takes the calendar queue in this test
        app.send_task("ops.record_heartbeat", args=("calendar",), queue="calendar")
    try:
        assert value(scrape(), "aspire_queue_depth", queue="calendar") == 3
    finally:
        with app.connection_for_write() as broker:
            broker.default_channel.queue_purge("calendar")
    assert value(scrape(), "aspire_queue_depth", queue="calendar") == 0


@pytest.mark.django_db(transaction=True)
def test_tokens_refreshed_and_refused_are_counted(
    providers_on_sandbox: SandboxProcess, bob: User, metrics_on: None,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "google", EMAIL)
    before = scrape()
    fresh_grant(connection_id=connection.pk, force=True)
    sandbox.control("DELETE", f"/accounts/google/{EMAIL}")  # the account and its grants are gone
    with pytest.raises(AuthRevoked):
        fresh_grant(connection_id=connection.pk, force=True)
    after = scrape()
    assert value(after, "aspire_tokens_refreshed_total", provider="google") - value(
        before, "aspire_tokens_refreshed_total", provider="google") == 1
    assert value(after, "aspire_tokens_refused_total", provider="google") - value(
        before, "aspire_tokens_refused_total", provider="google") == 1
    assert value(after, "aspire_connections", state="needs_signin") == 1
    assert MailboxConnection.objects.get(pk=connection.pk).state == MailboxConnection.State.NEEDS_SIGNIN
