"""Capture under the providers' throttling: Graph's limit of 4 concurrent requests per mailbox,
which every step of a $batch counts against, and Gmail's rate-limit answers in both documented
forms (429, and 403 userRateLimitExceeded / rateLimitExceeded). The job finishes across runs of
the capture task, and no message is lost or captured (or fetched) twice."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from accounts.models import SyncRun, User
from activities.models import Activity
from mailsync.capture import run_capture
from mailsync.models import EmailSource
from mailsync.tasks import capture_mailbox
from ops.models import WorkerHeartbeat
from ops.tasks import record_heartbeat
from providers.errors import TransientError
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

EMAIL = "bob@greenleaf.example"


def wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def folder_sizes(sandbox: SandboxProcess, provider: str) -> dict[str, int]:
    mailbox = sandbox.control("GET", f"/accounts/{provider}/{EMAIL}/mailbox")
    return {folder["name"]: len(folder["messages"]) for folder in mailbox["folders"]}


def log(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = sandbox.control("GET", "/requests", params={"account": EMAIL})["requests"]
    return entries


def captured_once(connection: Any, subjects: list[str]) -> None:
    assert sorted(Activity.objects.filter(subject__in=subjects).values_list("subject", flat=True)) == sorted(subjects)
    assert EmailSource.objects.filter(connection=connection).count() == len(subjects)


def warm_worker() -> None:
    """Until the worker takes tasks, so what follows is timed from a running worker."""
    record_heartbeat.delay()
    wait_for(WorkerHeartbeat.objects.exists)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_moves_throttled_step_by_step_by_the_mailboxs_concurrency_finish_across_runs(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")  # makes the Aspire and Processed folders
    subjects = [f"Estimate {n}" for n in range(20)]
    for subject in subjects:
        drop(sandbox, "microsoft", EMAIL, mime(subject))
    # A first run commits them all, then its first move fails: they wait in Aspire to be moved.
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 500, "path": r"/\$batch$"})
    with pytest.raises(TransientError):
        run_capture(connection_id=connection.pk, owner="first run")
    captured_once(connection, subjects)
    assert folder_sizes(sandbox, "microsoft")["Aspire"] == 20

    with real_worker(queues="default,mail") as worker:
        warm_worker()
        # Other work of Aspire's on this mailbox holds 3 of its 4 concurrent requests for 15 s:
        # each batch of 3 moves gets one slot, and its other two steps are answered 429.
        since = time.time()
        sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/busy", json={"requests": 3, "seconds": 15})
        capture_mailbox.apply_async((str(connection.pk), "manual"), queue="mail")
        wait_for(lambda: folder_sizes(sandbox, "microsoft")["Aspire"] == 0, seconds=60)
        wait_for(lambda: SyncRun.objects.filter(connection=connection, outcome="succeeded").exists())
        assert worker.poll() is None

    assert folder_sizes(sandbox, "microsoft")["Processed"] == 20
    captured_once(connection, subjects)
    batches = [entry for entry in log(sandbox) if entry["path"] == "/v1.0/$batch" and entry["ts"] >= since]
    steps = Counter(status for entry in batches for status in entry.get("steps", []))
    assert steps[201] == 20 and steps[429] > 0  # each message moved once; many steps refused meanwhile
    # More than the run's own rounds could wait out: the task retried, and the next run finished.
    outcomes = list(SyncRun.objects.filter(connection=connection, trigger="manual").order_by("started_at")
                    .values_list("outcome", flat=True))
    assert outcomes[0] == "retrying" and outcomes[-1] == "succeeded"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_fetch_throttled_mid_page_keeps_what_came_and_the_next_runs_finish_without_fetching_twice(
    providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "microsoft", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")
    subjects = [f"Photo {n}" for n in range(8)]
    ids = [sandbox.control("POST", f"/accounts/microsoft/{EMAIL}/messages", json={
        "folder": "Aspire", "raw": mime(subject)})["immutable_id"] for subject in subjects]
    # The folder lists newest first: the fourth listed is Photo 4. Its download is answered as
    # Graph answers a request over the mailbox's concurrency limit, twice.
    sandbox.control("POST", "/faults", json={
        "kind": "status", "status": 429, "retry_after": 1, "reason": "ApplicationThrottled",
        "message": "Application is over its MailboxConcurrency limit.", "path": rf"/messages/{ids[4]}/\$value$",
        "count": 2})

    with real_worker(queues="default,mail"):
        warm_worker()
        capture_mailbox.apply_async((str(connection.pk), "manual"), queue="mail")
        wait_for(lambda: SyncRun.objects.filter(connection=connection, trigger="manual", outcome="succeeded")
                 .exists())

    captured_once(connection, subjects)
    sizes = folder_sizes(sandbox, "microsoft")
    assert (sizes["Aspire"], sizes["Processed"]) == (0, 8)
    fetches = Counter(entry["path"] for entry in log(sandbox) if entry["path"].endswith("/$value"))
    assert fetches[f"/v1.0/me/messages/{ids[4]}/$value"] == 3  # refused twice, then fetched
    # What the first run took in is never fetched again; downloads running ahead of the refused
    # one are left for the next run, which fetches them again.
    assert [fetches[f"/v1.0/me/messages/{ids[n]}/$value"] for n in (7, 6, 5)] == [1, 1, 1]
    outcomes = list(SyncRun.objects.filter(connection=connection, trigger="manual").order_by("started_at")
                    .values_list("outcome", "items_imported"))
    assert outcomes == [("retrying", 3), ("retrying", 0), ("succeeded", 5)]


@pytest.mark.parametrize(("status", "reason"), [(403, "userRateLimitExceeded"), (403, "rateLimitExceeded"),
                                                (429, "rateLimitExceeded")])
def test_gmails_rate_limit_in_either_form_pauses_the_capture_and_it_resumes_with_nothing_lost(
    status: int, reason: str, providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "google", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")
    subjects = [f"Invoice {n}" for n in range(5)]
    ids = [drop(sandbox, "google", EMAIL, mime(subject)) for subject in subjects]
    # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
    sandbox.control("POST", "/faults", json={"kind": "status", "status": status, "reason": reason,
                                            "path": rf"/messages/{ids[2]}$", "count": 1})

    # The task itself, run here: the throttled run is retried (at once, when run in-process)
    # rather than recorded as failed.
    result = capture_mailbox.apply((str(connection.pk), "manual"))

    assert result.get() == "succeeded"
    runs = list(SyncRun.objects.filter(connection=connection, trigger="manual").order_by("started_at"))
    assert [run.outcome for run in runs] == ["retrying", "succeeded"]
    assert "asked Aspire to slow down" in runs[0].error
    captured_once(connection, subjects)
    assert folder_sizes(sandbox, "google")["Aspire"] == 0
    fetches = Counter(entry["path"] for entry in log(sandbox)
                      if entry["method"] == "GET" and entry["path"].count("/") == 6 and "/messages/" in entry["path"])
    assert fetches[f"/gmail/v1/users/me/messages/{ids[2]}"] == 2
    assert [fetches[f"/gmail/v1/users/me/messages/{ids[n]}"] for n in (4, 3)] == [1, 1]  # taken in before it
