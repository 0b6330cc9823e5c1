"""The providers' quotas, one budget per mailbox shared by capture and sending, one per application
with fair shares per company, held in Redis; a spent budget pauses work and loses none of it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from accounts import quotas
from accounts.models import MailboxConnection, SyncRun, User
from activities.models import Activity
from mailsync.capture import run_capture
from mailsync.models import OutboundEmail, SendQueue
from mailsync.outbox import queue_email
from mailsync.sending import drain_queue
from providers.errors import Throttled
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime

WINDOW = 7  # seconds: short windows, so a test sees one turn (long enough for a loaded machine)


def small_budgets(settings: Any, *, mailbox: int, application: int = 1000) -> None:
    settings.QUOTA_HEADROOM = 1.0
    settings.PROVIDER_QUOTAS = {provider: {"mailbox": (mailbox, WINDOW), "application": (application, WINDOW)}
                                for provider in ("microsoft", "google")}


def wait_for_next_window() -> None:
    time.sleep(WINDOW - time.time() % WINDOW + 0.05)


def in_folder(sandbox: SandboxProcess, address: str, name: str) -> int:
    folders = sandbox.control("GET", f"/accounts/microsoft/{address}/mailbox")["folders"]
    return next(len(f["messages"]) for f in folders if f["name"] == name)


def test_a_spent_mailbox_budget_pauses_capture_and_loses_nothing(
        providers_on_sandbox: SandboxProcess, bob: User, buckets: Any, settings: Any) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="folders")
    small_budgets(settings, mailbox=2)
    wait_for_next_window()
    run_capture(connection_id=connection.pk, owner="first")  # an idle run: one request
    quotas.admit(connection=connection, sending=True)  # and a send (Graph: one request)
    assert quotas.spent(connection=connection)["mailbox"] == 2
    drop(providers_on_sandbox, "microsoft", "bob@greenleaf.example", mime("Held back a moment"))
    runs = SyncRun.objects.count()

    with pytest.raises(Throttled) as refused:
        run_capture(connection_id=connection.pk, owner="second")
    assert 0 < (refused.value.retry_after or 0) <= WINDOW
    assert SyncRun.objects.count() == runs  # refused before it started: nothing to record
    assert in_folder(providers_on_sandbox, "bob@greenleaf.example", "Aspire") == 1
    assert not Activity.objects.filter(subject="Held back a moment").exists()
    # The lease was let go: the retry after the wait runs.
    time.sleep(refused.value.retry_after or 0)
    run = run_capture(connection_id=connection.pk, owner="third")
    assert run is not None and run.outcome == SyncRun.Outcome.SUCCEEDED
    assert Activity.objects.filter(subject="Held back a moment").exists()
    assert in_folder(providers_on_sandbox, "bob@greenleaf.example", "Aspire") == 0


def test_capture_and_sending_draw_from_one_mailbox_budget(
        providers_on_sandbox: SandboxProcess, bob: User, buckets: Any, settings: Any) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="folders")
    small_budgets(settings, mailbox=1)
    wait_for_next_window()
    run_capture(connection_id=connection.pk, owner="capture")  # an idle run: the window's one request
    outbound = queue_email(author=bob, to="dana@example.com", subject="Month-end statement", body="Attached.")
    assert quotas.spent(connection=connection)["mailbox"] == 1

    result = drain_queue(connection_id=connection.pk, owner="sender")
    outbound.refresh_from_db()
    assert result.sent == 0 and result.resume_at is not None
    assert outbound.state == OutboundEmail.State.QUEUED and outbound.attempts == 0  # untouched, not failed
    assert SendQueue.objects.get(pk=connection.pk).next_send_at > timezone.now()

    wait_for_next_window()
    assert drain_queue(connection_id=connection.pk, owner="sender").sent == 1
    outbound.refresh_from_db()
    assert outbound.state == OutboundEmail.State.SENT
    # ... and that send spent the new window's budget, so capture waits for the next one.
    with pytest.raises(Throttled):
        run_capture(connection_id=connection.pk, owner="capture")


def test_companies_get_fair_shares_of_the_application_budget(
        bob: User, carol: User, buckets: Any, settings: Any) -> None:
    small_budgets(settings, mailbox=1000, application=12)
    big, other = (MailboxConnection.objects.create(
        company_id=user.tenant_id, user=user, provider="microsoft", mailbox_address=user.email, state="connected")
        for user in (bob, carol))
    wait_for_next_window()
    admitted = 0
    with pytest.raises(Throttled) as refused:
        for _ in range(20):
            quotas.admit(connection=big)
            admitted += 1
    # Alone, past half the budget, a company keeps its share and room for one more company.
    assert admitted == 6
    assert "company share" in str(refused.value)
    for _ in range(4):
        quotas.admit(connection=other)  # the other company is not starved
    assert quotas.spent(connection=other) == {"mailbox": 4, "application": 10, "company": 4}
    # Both are held to their shares now: what is left of the window is room for a company yet to start.
    with pytest.raises(Throttled, match="company share"):
        quotas.admit(connection=other)
    # With fair shares only at the very end, the application's own limit still holds for everyone.
    settings.QUOTA_FAIR_SHARE_FROM = 1.0
    quotas.admit(connection=other)
    quotas.admit(connection=big)
    with pytest.raises(Throttled, match="application"):
        quotas.admit(connection=other)


def test_without_redis_work_goes_on_unmetered(providers_on_sandbox: SandboxProcess, bob: User, settings: Any) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="folders")
    drop(providers_on_sandbox, "microsoft", "bob@greenleaf.example", mime("While Redis is down"))
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    run = run_capture(connection_id=connection.pk, owner="no-redis")
    assert run is not None and run.outcome == SyncRun.Outcome.SUCCEEDED
    assert Activity.objects.filter(subject="While Redis is down").exists()
