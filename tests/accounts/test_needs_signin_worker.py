"""The needs-sign-in email from where it is really sent: a Celery worker process whose hourly capture
run finds the grant refused (the sandbox's invalid_grant), after that run's commit. That it is sent once
per transition, not per run, is shown in test_sync_health.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from accounts import grants
from accounts.models import MailboxConnection, SyncRun, User
from mailsync.tasks import capture_mailbox
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox
from tests.workers import real_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_that_meets_a_refused_grant_emails_the_user_once(
        providers_on_sandbox: SandboxProcess, bob: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        settings: Any) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    # The access token is past its time, so the worker's run must renew it, and the sandbox refuses.
    grant = grants.load_grant(connection)
    grants.store_grant(connection, dataclasses.replace(grant, expires_at=grant.expires_at - dt.timedelta(hours=2)))
    connection.save(update_fields=["grant_ciphertext", "token_expires_at"])
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})
    # The worker's mail goes to files, read back here.
    outbox = tmp_path / "sent-mail"
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(outbox))

    with real_worker(queues="mail", hostname="signin-mail-worker@%h") as worker:
        capture_mailbox.delay(str(connection.pk))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                SyncRun.objects.filter(connection=connection, outcome="failed").exists() and list(outbox.glob("*"))):
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)

    assert MailboxConnection.objects.get(pk=connection.pk).state == "needs_signin"
    sent = "".join(path.read_text() for path in outbox.glob("*"))
    assert sent.count("Subject: Aspire: sign in again to keep your mail and calendar syncing") == 1, sent
    assert "To: bob@greenleaf.example" in sent
    assert f"{settings.OAUTH_REDIRECT_URI.split('/settings/')[0]}/settings/" in sent
