"""Retention with real rows and files: run records pruned to each connection's last N, failures
kept for their days, running runs never; sent mail's attachments released, failed mail's kept;
stale spool folders removed, a live run's kept. Through the beat task itself."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun, User
from aspire_sync.tasks import prune_records
from mailsync.models import OutboundAttachment, OutboundEmail

NOW = timezone.now()


def connection_of(user: User) -> MailboxConnection:
    return MailboxConnection.objects.create(company=user.company, user=user, provider="google",
                                            mailbox_address=user.email, state=MailboxConnection.State.CONNECTED)


def run(connection: MailboxConnection, *, days_ago: float, outcome: str = SyncRun.Outcome.SUCCEEDED,
        kind: str = SyncRun.Kind.MAIL) -> SyncRun:
    started = NOW - dt.timedelta(days=days_ago)
    return SyncRun.objects.create(company=connection.company, connection=connection, kind=kind, outcome=outcome,
                                  started_at=started, finished_at=started + dt.timedelta(seconds=3))


@pytest.fixture
def retention(settings: Any, tmp_path: Path) -> None:
    settings.SYNC_RUN_KEEP_PER_CONNECTION = 3
    settings.SYNC_RUN_KEEP_FAILURES_DAYS = 30
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MAIL_SPOOL_DIR = tmp_path / "spool"
    settings.MAIL_SPOOL_MAX_AGE_SECONDS = 3600


@pytest.mark.django_db
def test_runs_past_the_last_n_are_pruned_but_recent_failures_and_running_runs_stay(
    retention: None, bob: User, carol: User,
) -> None:
    mine, theirs = connection_of(bob), connection_of(carol)
    newest = [run(mine, days_ago=d) for d in (1, 2)] + [run(mine, days_ago=3, kind=SyncRun.Kind.CALENDAR)]
    old_success = [run(mine, days_ago=d) for d in (4, 50, 60)]
    recent_failures = [run(mine, days_ago=5, outcome=SyncRun.Outcome.FAILED),
                       run(mine, days_ago=6, outcome=SyncRun.Outcome.RETRYING),
                       run(mine, days_ago=29, outcome=SyncRun.Outcome.PARTIAL)]
    old_failure = run(mine, days_ago=31, outcome=SyncRun.Outcome.FAILED)
    still_running = run(mine, days_ago=40, outcome=SyncRun.Outcome.RUNNING)
    # Another connection's runs are counted on their own: its 3 are its last 3, old as they are.
    other = [run(theirs, days_ago=d) for d in (100, 200, 300)]

    result = prune_records.apply().get()

    assert result["sync_runs"] == len(old_success) + 1
    kept = set(SyncRun.objects.values_list("pk", flat=True))
    assert kept == {r.pk for r in [*newest, *recent_failures, still_running, *other]}
    assert old_failure.pk not in kept
    # Idempotent: nothing more to prune.
    assert prune_records.apply().get()["sync_runs"] == 0


@pytest.mark.django_db
def test_a_failure_past_its_days_goes_unless_it_is_among_the_last_n(retention: None, bob: User) -> None:
    mine = connection_of(bob)
    among_the_last = run(mine, days_ago=90, outcome=SyncRun.Outcome.FAILED)
    prune_records.apply().get()
    assert SyncRun.objects.filter(pk=among_the_last.pk).exists()


def outbound(user: User, connection: MailboxConnection, state: str, name: str) -> OutboundAttachment:
    message = OutboundEmail.objects.create(company=user.company, author=user, connection=connection,
                                           message_id=f"<{name}@greenleaf.example>", to=["dana@example.com"],
                                           subject=name, body="See attached", state=state)
    attachment = OutboundAttachment(outbound=message, filename=f"{name}.pdf", content_type="application/pdf", size=4)
    attachment.file.save(f"{name}-stored", ContentFile(b"%PDF"), save=False)
    attachment.save()
    return attachment


@pytest.mark.django_db
def test_sent_mails_attachments_are_released_and_the_others_kept(retention: None, bob: User) -> None:
    connection = connection_of(bob)
    sent = outbound(bob, connection, OutboundEmail.State.SENT, "proposal")
    failed = outbound(bob, connection, OutboundEmail.State.FAILED, "invoice")
    queued = outbound(bob, connection, OutboundEmail.State.QUEUED, "estimate")
    sent_path = Path(sent.file.path)
    assert sent_path.exists()

    assert prune_records.apply().get()["sent_attachments"] == 1

    assert not sent_path.exists()
    sent.refresh_from_db()
    assert sent.file.name == "" and sent.filename == "proposal.pdf" and sent.size == 4  # the Outbox still says it
    for kept in (failed, queued):
        kept.refresh_from_db()
        assert Path(kept.file.path).read_bytes() == b"%PDF"
    assert prune_records.apply().get()["sent_attachments"] == 0


@pytest.mark.django_db
def test_stale_spool_folders_are_removed_and_live_ones_kept(retention: None, settings: Any) -> None:
    spool = Path(settings.MAIL_SPOOL_DIR)
    stale, live = spool / "tmp-killed-run", spool / "tmp-running"
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "attachment-0").write_bytes(b"data")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    assert prune_records.apply().get()["spool_entries"] == 1

    assert not stale.exists()
    assert (live / "attachment-0").read_bytes() == b"data"
