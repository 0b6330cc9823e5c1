"""Sync runs, shared by mail and calendar sync: one run per connection and kind at a time (a lease
on that kind's sync-state row, claimed with a conditional UPDATE), each recorded as a SyncRun
with its counts and outcome, which the status panel and the admin show."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from providers.errors import AuthRevoked, ProviderError, Throttled

from .mailbox import mark_needs_signin
from .models import MailboxConnection, SyncRun

OUR_FAULT = "Something went wrong on our side; we are looking into it."


class RunBusy(Exception):
    """Another run holds this connection's lease for this kind of sync."""


@dataclass
class RunCounts:
    seen: int = 0
    imported: int = 0
    already_there: int = 0
    failed: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)


def claim_lease(state_model: Any, connection_id: uuid.UUID, owner: str, lease: dt.timedelta) -> bool:
    """Take (or, for the same owner, renew) the lease on ``state_model``'s row for the connection.
    ``state_model`` has ``connection``, ``lease_until`` and ``lease_owner`` fields."""
    state_model.objects.get_or_create(connection_id=connection_id)
    now = timezone.now()
    claimed = (
        state_model.objects.filter(connection_id=connection_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(lease_until=now + lease, lease_owner=owner)
    )
    return bool(claimed == 1)


def release_lease(state_model: Any, connection_id: uuid.UUID, owner: str) -> None:
    state_model.objects.filter(connection_id=connection_id, lease_owner=owner).update(
        lease_until=None, lease_owner=""
    )


@contextmanager
def recorded_run(
    *, connection: MailboxConnection, kind: str, trigger: str, state_model: Any, owner: str, lease: dt.timedelta
) -> Iterator[tuple[SyncRun, RunCounts]]:
    """Hold the lease and record the run around the body. Raises RunBusy when another run holds the
    connection. Provider errors are recorded (throttled and transient ones as "will resume"; a
    revoked grant also puts the connection in "needs sign-in") and raised again for the task."""
    if not claim_lease(state_model, connection.pk, owner, lease):
        raise RunBusy(str(connection.pk))
    run = SyncRun.objects.create(company_id=connection.company_id, connection=connection, kind=kind, trigger=trigger)
    counts = RunCounts()
    try:
        yield run, counts
    except Throttled as exc:
        _finish(run, counts, SyncRun.Outcome.RETRYING, exc.user_message)
        raise
    except AuthRevoked as exc:
        mark_needs_signin(connection_id=connection.pk, message=exc.user_message)
        _finish(run, counts, SyncRun.Outcome.FAILED, exc.user_message)
        raise
    except ProviderError as exc:
        _finish(run, counts, SyncRun.Outcome.FAILED if exc.permanent else SyncRun.Outcome.RETRYING, exc.user_message)
        raise
    except Exception:
        _finish(run, counts, SyncRun.Outcome.FAILED, OUR_FAULT)
        raise
    else:
        outcome = SyncRun.Outcome.PARTIAL if counts.failed or counts.problems else SyncRun.Outcome.SUCCEEDED
        _finish(run, counts, outcome, "; ".join(counts.problems[:5]))
        MailboxConnection.objects.filter(pk=connection.pk).update(last_sync_at=run.finished_at)
    finally:
        release_lease(state_model, connection.pk, owner)


def _finish(run: SyncRun, counts: RunCounts, outcome: str, error: str) -> None:
    run.finished_at = timezone.now()
    run.outcome = outcome
    run.items_seen, run.items_imported = counts.seen, counts.imported
    run.items_already_there, run.items_failed = counts.already_there, counts.failed
    run.provider_requests = counts.requests
    run.error = error
    run.save()
    if outcome in (SyncRun.Outcome.FAILED, SyncRun.Outcome.RETRYING) and error:
        MailboxConnection.objects.filter(pk=run.connection_id).update(last_error=error, last_error_at=run.finished_at)
    elif outcome == SyncRun.Outcome.SUCCEEDED:
        MailboxConnection.objects.filter(pk=run.connection_id).update(last_error="", last_error_at=None)
