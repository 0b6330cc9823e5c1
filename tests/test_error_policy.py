"""One meaning of "retry": every kind of provider answer, end to end through the capture and
calendar tasks against the sandbox. What the run record and the status panel say, and whether the
task tries again (and after how long), both come from the error's one axis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import time
from typing import Any

import pytest

from accounts.grants import load_grant, store_grant
from accounts.models import MailboxConnection, SyncRun, User
from calendarsync.tasks import sync_calendar
from mailsync.capture import run_capture
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox

LISTING = {
    ("mail", "microsoft"): r"/mailFolders/[^/]+/messages$",
    ("mail", "google"): r"/users/me/messages$",
    ("calendar", "microsoft"): r"/calendarView",
    ("calendar", "google"): r"/events$",
}
TASKS = {"mail": capture_mailbox, "calendar": sync_calendar}
BACKOFF_FIRST = (7.5, 15.0)  # providers.http: the first backoff without a Retry-After

# (fault, what the task does: a wait in seconds, a (low, high) backoff window, or "no retry").
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "400 refused": ({"kind": "status", "status": 400}, "no retry"),
    "403 forbidden": ({"kind": "status", "status": 403}, "no retry"),
    "429 with Retry-After": ({"kind": "status", "status": 429, "retry_after": 3}, 3.0),
    "429 without Retry-After": ({"kind": "status", "status": 429}, BACKOFF_FIRST),
    "500": ({"kind": "status", "status": 500}, BACKOFF_FIRST),
    "502": ({"kind": "status", "status": 502}, BACKOFF_FIRST),
    "503 with Retry-After": ({"kind": "status", "status": 503, "retry_after": 2}, 2.0),
    "503 without Retry-After": ({"kind": "status", "status": 503}, BACKOFF_FIRST),
    "504": ({"kind": "status", "status": 504}, BACKOFF_FIRST),
    "connection dropped": ({"kind": "drop"}, BACKOFF_FIRST),
}


@pytest.fixture(params=["microsoft", "google"])
def mailbox(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    connection = connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")  # the Aspire and Processed folders
    SyncRun.objects.all().delete()
    return connection


def run_task(kind: str, connection: MailboxConnection, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[float]]:
    """Run the task as a worker would (eagerly: a retry runs at once), recording each retry's wait."""
    task = TASKS[kind]
    countdowns: list[float] = []
    original = task.retry

    def record(*args: Any, **kwargs: Any) -> Any:
        countdowns.append(float(kwargs["countdown"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", record)
    return str(task.apply(args=(str(connection.pk), "manual")).get()), countdowns


def panel(user: User) -> str:
    return html.unescape(client_for(user).get("/settings/").content.decode())


@pytest.mark.parametrize("kind", ["mail", "calendar"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_answer_is_recorded_and_retried_by_its_one_axis(
    kind: str, case: str, mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault, expected = CASES[case]
    providers_on_sandbox.control("POST", "/faults", json={
        **fault, "path": LISTING[kind, mailbox.provider], "account": "bob@greenleaf.example"})

    if expected == "no retry":
        text_before = panel(bob)
        assert "refused a request from Aspire" not in text_before
    result, countdowns = run_task(kind, mailbox, monkeypatch)
    first = SyncRun.objects.filter(connection=mailbox, kind=kind).order_by("started_at").first()
    assert first is not None

    if expected == "no retry":
        # Waiting won't help: recorded as failed, said in plain words, not tried again.
        assert result == "failed: ProviderError" and countdowns == []
        assert first.outcome == SyncRun.Outcome.FAILED
        assert "refused a request from Aspire" in panel(bob)
        mailbox.refresh_from_db()
        assert mailbox.state == MailboxConnection.State.CONNECTED  # nothing for the user to sign in to
        return
    # Waiting can help: recorded as "will resume", tried again after the provider's wait or a
    # short growing backoff, and the retry goes through.
    assert first.outcome == SyncRun.Outcome.RETRYING and first.error
    assert result == "succeeded" and len(countdowns) == 1
    if isinstance(expected, tuple):
        assert expected[0] <= countdowns[0] <= expected[1]
    else:
        assert countdowns[0] == pytest.approx(expected)
    assert SyncRun.objects.filter(connection=mailbox, kind=kind).latest("started_at").outcome == "succeeded"


@pytest.mark.parametrize("kind", ["mail", "calendar"])
def test_a_refused_access_token_is_renewed_once_and_the_run_goes_on(
    kind: str, mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 401 before the token's time (a password change, revoked sessions): renewed at once, for
    capture and calendar alike, without a retry and without "needs sign-in"."""
    since = time.time()
    providers_on_sandbox.control("POST", "/faults", json={
        "kind": "status", "status": 401, "path": LISTING[kind, mailbox.provider], "account": "bob@greenleaf.example"})
    result, countdowns = run_task(kind, mailbox, monkeypatch)
    assert result == "succeeded" and countdowns == []
    refreshes = [r for r in providers_on_sandbox.control("GET", "/requests", params={"since": since})["requests"]
                 if r["path"].endswith("/token") and r["method"] == "POST"]
    assert len(refreshes) == 1
    mailbox.refresh_from_db()
    assert mailbox.state == MailboxConnection.State.CONNECTED


@pytest.mark.parametrize("kind", ["mail", "calendar"])
def test_a_refused_renewal_needs_sign_in_and_says_one_thing(
    kind: str, mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run of the other kind was waiting to resume: it won't, and the panel must not say so.
    other = "calendar" if kind == "mail" else "mail"
    SyncRun.objects.create(company=mailbox.company, connection=mailbox, kind=other,
                           outcome=SyncRun.Outcome.RETRYING, error="Aspire is renewing its access to this mailbox")
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})
    connection = MailboxConnection.objects.get(pk=mailbox.pk)
    store_grant(connection, dataclasses.replace(load_grant(connection), expires_at=dt.datetime.now(dt.UTC)))
    connection.save()

    result, countdowns = run_task(kind, mailbox, monkeypatch)
    assert result == "failed: AuthRevoked" and countdowns == []
    mailbox.refresh_from_db()
    assert mailbox.state == MailboxConnection.State.NEEDS_SIGNIN
    text = panel(bob)
    assert "Needs sign-in" in text and "Please sign in again" in text
    assert "will resume" not in text and "renewing its access" not in text
    assert not SyncRun.objects.filter(connection=mailbox, outcome=SyncRun.Outcome.RETRYING).exists()
