"""Structured logs: a real worker's lines are JSON, a run's lines carry its company, connection and
run ids, and no token ever appears, even at DEBUG."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from accounts.grants import load_grant
from accounts.models import MailboxConnection, SyncRun, User
from aspire_sync.log_filters import RedactSecrets
from crm.models import Contact
from mailsync.capture import run_capture
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime
from tests.workers import real_worker

EMAIL = "bob@greenleaf.example"


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_runs_log_lines_carry_its_ids_and_never_a_token(
    providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, tmp_path: Path,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, "google", EMAIL)
    run_capture(connection_id=connection.pk, owner="setup")  # makes the Aspire and Processed labels
    grant = load_grant(MailboxConnection.objects.get(pk=connection.pk))
    secrets = [grant.access_token,
               *(value for value in grant.data.values() if isinstance(value, str) and len(value) > 16)]
    assert len(secrets) >= 2  # the access token and the refresh token
    drop(sandbox, "google", EMAIL, mime("Mulch delivery"))
    log_file = tmp_path / "worker.log"
    with log_file.open("wb") as output, real_worker(
        queues="mail", hostname="logs-worker@%h", env_extra={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"},
        output=output,
    ):
        capture_mailbox.delay(str(connection.pk), SyncRun.Trigger.MANUAL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not SyncRun.objects.filter(
                outcome="succeeded", trigger=SyncRun.Trigger.MANUAL).exists():
            time.sleep(0.3)
    run = SyncRun.objects.get(outcome="succeeded", trigger=SyncRun.Trigger.MANUAL)
    assert run.items_imported == 1

    text = log_file.read_text()
    lines = json_lines(log_file)
    assert lines, text[:2000]
    # Every log line is JSON, Celery's own too (only its start-up banner is not a log line): none
    # in the plain format, nor in Celery's "[time: LEVEL/process]" one.
    assert not re.search(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |\[\d{4}-.*: (DEBUG|INFO|WARNING|ERROR)/)",
                         text, re.MULTILINE), text[:3000]
    assert any(line["logger"].startswith("celery.") for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    of_the_run = [line for line in lines if line.get("run_id") == str(run.pk)]
    assert of_the_run[0]["message"] == "sync run started"
    assert of_the_run[-1]["message"] == "sync run finished"
    for line in of_the_run:
        assert line["connection_id"] == str(connection.pk)
        assert line["company_id"] == str(bob.company_id)
    assert of_the_run[-1]["outcome"] == "succeeded"
    assert of_the_run[-1]["imported"] == 1
    for secret in secrets:
        assert secret not in text


def test_credentials_in_a_message_are_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "answer %s header %s", (
        '{"access_token": "eyJ0eXAi.secret.part", "refresh_token":"1//0gRefresh"}', "Bearer ya29.a0Secret"), None)
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert "eyJ0eXAi" not in message and "1//0gRefresh" not in message and "ya29" not in message
    assert message.count("[redacted]") == 3
