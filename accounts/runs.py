"""The run lifecycle shared by everything that works on a connection: capture, calendar sync and
sending.

- **One lease** per connection and kind of work (a conditional UPDATE on that kind's state row),
  so one worker at a time captures a mailbox, syncs its calendar or sends its mail. A lease that
  lapsed without being released means its worker died: ``lapsed_leases`` finds those, and the
  dispatcher picks the work up again (the database, not the broker, is how work is recovered).
- **One grant renewal**: when the provider refuses the access token (401), the grant is renewed
  once and the work goes again (``with_fresh_grant``); a refused renewal means "needs sign-in".
- **One record** per capture or calendar run (``SyncRun``), whose outcome reads the error's one
  axis: ``permanent`` means failed, anything else is retrying.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import connection as db_connection
from django.db import models
from django.db.models import Case, F, Q, QuerySet, Value, When, sql
from django.utils import timezone

from aspire_sync.celery import Busy
from providers.base import Grant
from providers.errors import AccessTokenRejected, AuthRevoked, ProviderError, Throttled
from providers.http import BACKOFF_CAP

from . import metrics, quotas
from .grants import fresh_grant, mark_needs_signin
from .log_context import log_ids
from .models import MailboxConnection, SyncRun

OUR_FAULT = "Something went wrong on our side; we are looking into it."
RECHECK_GRACE = dt.timedelta(minutes=2)
INTERRUPTED = "This sync was interrupted before it finished; Aspire picked it up again."

T = TypeVar("T")
log = logging.getLogger(__name__)


class RunBusy(Busy):
    """Another run holds this connection's lease for this kind of work."""


@dataclass
class RunCounts:
    seen: int = 0
    imported: int = 0
    already_there: int = 0
    failed: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)


# -- the lease -------------------------------------------------------------------------------


def claim_lease(state_model: Any, connection_id: uuid.UUID, owner: str, lease: dt.timedelta) -> Any | None:
    """Take (or, for the same owner, renew) the lease on ``state_model``'s row for the connection,
    and return the row as claimed (None when another owner holds it). ``state_model`` has
    ``connection`` (its key), ``lease_until`` and ``lease_owner`` fields.

    One statement claims and reads the row (``UPDATE ... RETURNING``, PostgreSQL and SQLite 3.35+):
    a run reads its state from the claim rather than in a query of its own. The row is made the
    first time only."""
    claimed = _claim(state_model, connection_id, owner, lease)
    if claimed is None and state_model.objects.get_or_create(connection_id=connection_id)[1]:
        claimed = _claim(state_model, connection_id, owner, lease)
    return claimed


def _claim(state_model: Any, connection_id: uuid.UUID, owner: str, lease: dt.timedelta) -> Any | None:
    meta = state_model._meta
    quote, adapt = db_connection.ops.quote_name, db_connection.ops.adapt_datetimefield_value
    now = timezone.now()
    columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET lease_until = %s, lease_owner = %s "  # noqa: S608 (our own names)
        f"WHERE {quote(meta.pk.column)} = %s AND (lease_until IS NULL OR lease_until < %s OR lease_owner = %s) "
        f"RETURNING {columns}"
    )
    key = meta.pk.get_db_prep_value(connection_id, db_connection)
    rows = list(state_model.objects.raw(sql, [adapt(now + lease), owner, key, adapt(now), owner]))
    return rows[0] if rows else None


def release_lease(state_model: Any, connection_id: uuid.UUID, owner: str) -> None:
    state_model.objects.filter(connection_id=connection_id, lease_owner=owner).update(
        lease_until=None, lease_owner=""
    )


def lapsed_leases(state_model: Any) -> list[uuid.UUID]:
    """Connections whose lease of this kind lapsed without being released: the worker holding it
    was killed (or lost the database) mid-run. Each is taken back here, so it is reported once."""
    now = timezone.now()
    lapsed = list(state_model.objects.filter(lease_until__lt=now).exclude(lease_owner="").values_list(
        "connection_id", "lease_owner"))
    taken: list[uuid.UUID] = []
    for connection_id, owner in lapsed:
        if state_model.objects.filter(connection_id=connection_id, lease_owner=owner, lease_until__lt=now).update(
                lease_until=None, lease_owner=""):
            taken.append(connection_id)
    return taken


# -- the grant -------------------------------------------------------------------------------


def with_fresh_grant(connection_id: uuid.UUID | str, work: Callable[[Grant], T], *,
                     connection: MailboxConnection | None = None) -> T:
    """Run ``work`` with a grant good for a few more minutes. When the provider refuses the access
    token anyway (expired early, sessions revoked, a password changed), renew the grant once and
    run ``work`` again: a 401 comes before the provider acts on a request, so that is safe for a
    send too. A refused renewal raises ``AuthRevoked`` (and the connection needs sign-in); a second
    refusal of the new token is raised for the caller's retry policy (it is transient).

    ``connection``, the row as the caller just read it, saves a query while its access token is
    good (``fresh_grant``)."""
    try:
        return work(fresh_grant(connection_id=connection_id, known=connection))
    except AccessTokenRejected:
        return work(fresh_grant(connection_id=connection_id, force=True))


# -- a recorded run --------------------------------------------------------------------------


def run_lease() -> dt.timedelta:
    """How long a capture or calendar run holds its connection without renewing: short, so the
    work of a worker killed mid-run is picked up again within minutes (runs renew it per page)."""
    return dt.timedelta(seconds=settings.SYNC_RUN_LEASE_SECONDS)


def renew_run_lease(state_model: Any, connection_id: uuid.UUID, owner: str) -> None:
    claim_lease(state_model, connection_id, owner, run_lease())


def record_run(
    *, connection: MailboxConnection, kind: str, trigger: str, state_model: Any, owner: str,
    work: Callable[[Grant, RunCounts, Any], None],
) -> SyncRun:
    """Hold the lease, run ``work(grant, counts, state)`` with a fresh grant (renewed once if
    refused) and the state row as the lease claimed it, and record the run.

    Raises RunBusy when another run holds the connection. Provider errors are recorded and raised
    again for the task's retry policy: ``permanent`` ones as failed (a revoked grant also puts the
    connection in "needs sign-in"), the others as retrying.

    An idle run (nothing to do at the provider) costs four statements: the connection read by the
    caller, the lease claimed with its state read, the run inserted, and the run finished with the
    connection's last successful sync and the lease released (``_finish``)."""
    state = claim_lease(state_model, connection.pk, owner, run_lease())
    if state is None:
        raise RunBusy(str(connection.pk))
    try:
        # The mailbox's and the application's budgets, shared with sending and every worker: when
        # spent, the task waits for them as for a provider's throttle (nothing is recorded yet).
        quotas.admit(connection=connection)
    except Throttled:
        release_lease(state_model, connection.pk, owner)
        raise
    run = SyncRun.objects.create(company_id=connection.company_id, connection=connection, kind=kind, trigger=trigger)
    # Every log line of the run, here and in the work, carries these ids.
    with log_ids(company_id=connection.company_id, connection_id=connection.pk, run_id=run.pk):
        log.info("sync run started", extra={"kind": kind, "trigger": trigger, "provider": connection.provider})
        counts = RunCounts()
        lease = (state_model, owner)
        finished = False
        try:
            with_fresh_grant(connection.pk, lambda grant: work(grant, counts, state), connection=connection)
        except AuthRevoked as exc:
            mark_needs_signin(connection_id=connection.pk, message=exc.user_message)
            _finish(run, counts, SyncRun.Outcome.FAILED, exc.user_message, lease=lease)
            finished = True
            raise
        except ProviderError as exc:
            if isinstance(exc, Throttled):
                metrics.throttled(provider=connection.provider, work=kind, retry_after=exc.retry_after)
            outcome = SyncRun.Outcome.FAILED if exc.permanent else SyncRun.Outcome.RETRYING
            _finish(run, counts, outcome, exc.user_message, lease=lease)
            finished = True
            if not exc.permanent:
                _recheck_later(connection.pk)
            raise
        except Exception:
            _finish(run, counts, SyncRun.Outcome.FAILED, OUR_FAULT, lease=lease)
            finished = True
            raise
        else:
            outcome = SyncRun.Outcome.PARTIAL if counts.failed or counts.problems else SyncRun.Outcome.SUCCEEDED
            _finish(run, counts, outcome, "; ".join(counts.problems[:5]), lease=lease)
            finished = True
        finally:
            quotas.charge(connection=connection, requests=counts.requests)
            if not finished:  # the outcome could not be written: the lease is released all the same
                release_lease(state_model, connection.pk, owner)
    return run


def _recheck_later(connection_id: uuid.UUID) -> None:
    """The task retries a paused run after a wait it holds in the broker; should that task be lost
    with its worker, the dispatcher runs the connection again anyway by then (a retry that did run
    makes this one an idle run: one request)."""
    recheck = timezone.now() + dt.timedelta(seconds=BACKOFF_CAP) + RECHECK_GRACE
    MailboxConnection.objects.filter(pk=connection_id, next_sync_at__gt=recheck).update(next_sync_at=recheck)


def interrupted(*, connection_id: uuid.UUID, kind: str) -> None:
    """Close the run records a killed worker left open, so the status panel tells the truth."""
    SyncRun.objects.filter(connection_id=connection_id, kind=kind, outcome=SyncRun.Outcome.RUNNING).update(
        outcome=SyncRun.Outcome.RETRYING, finished_at=timezone.now(), error=INTERRUPTED,
    )


def _finish(run: SyncRun, counts: RunCounts, outcome: str, error: str, *, lease: tuple[Any, str]) -> None:
    """Record the run's outcome, what the connection shows of it, and release the run's lease
    (``lease``: the state model and the owner), in one statement on PostgreSQL."""
    run.finished_at = timezone.now()
    run.outcome = outcome
    run.items_seen, run.items_imported = counts.seen, counts.imported
    run.items_already_there, run.items_failed = counts.already_there, counts.failed
    run.provider_requests = counts.requests
    run.error = error
    fields = ("finished_at", "outcome", "items_seen", "items_imported", "items_already_there", "items_failed",
              "provider_requests", "error")
    writes: list[tuple[QuerySet[Any], dict[str, Any]]] = [
        (SyncRun.objects.filter(pk=run.pk), {name: getattr(run, name) for name in fields})]
    # One state, one message: once the connection needs a sign-in, that is its problem, and a run
    # of another kind finishing afterwards ("will resume") must not talk over it.
    connection = MailboxConnection.objects.filter(pk=run.connection_id)
    is_connected = Q(state=MailboxConnection.State.CONNECTED)
    if outcome in (SyncRun.Outcome.FAILED, SyncRun.Outcome.RETRYING) and error:
        writes.append((connection.filter(is_connected), {"last_error": error, "last_error_at": run.finished_at}))
    elif outcome == SyncRun.Outcome.SUCCEEDED:
        # The last successful sync whatever the state; the problem cleared only while connected.
        writes.append((connection, {
            "last_sync_at": run.finished_at,
            "last_error": Case(When(is_connected, then=Value("")), default=F("last_error"),
                               output_field=models.TextField()),
            "last_error_at": Case(When(is_connected, then=Value(None)), default=F("last_error_at"),
                                  output_field=models.DateTimeField())}))
    elif outcome == SyncRun.Outcome.PARTIAL:
        writes.append((connection, {"last_sync_at": run.finished_at}))
    state_model, owner = lease
    writes.append((state_model.objects.filter(connection_id=run.connection_id, lease_owner=owner),
                   {"lease_until": None, "lease_owner": ""}))
    update_together(writes)
    log.info("sync run finished", extra={
        "kind": run.kind, "outcome": outcome, "seconds": round((run.finished_at - run.started_at).total_seconds(), 3),
        "seen": counts.seen, "imported": counts.imported, "failed": counts.failed, "requests": counts.requests})
    metrics.run_finished(kind=run.kind, provider=run.connection.provider, outcome=outcome, trigger=run.trigger,
                         seconds=(run.finished_at - run.started_at).total_seconds(), connection_id=run.connection_id,
                         wrote=counts.imported > 0)


def update_together(writes: list[tuple[QuerySet[Any], dict[str, Any]]]) -> None:
    """Run several ``queryset.update(**values)`` at once. On PostgreSQL they are one statement
    (the first ones as data-modifying WITH clauses, which all see the same snapshot), so one round
    trip and one commit; elsewhere (SQLite, the demo) one after another. They must touch different
    rows. Reference: https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING"""
    if db_connection.vendor != "postgresql" or len(writes) == 1:
        for queryset, values in writes:
            queryset.update(**values)
        return
    statements, params = [], []
    for queryset, values in writes:
        query = cast(sql.UpdateQuery, queryset.query.chain(sql.UpdateQuery))
        query.add_update_values(values)
        text, args = query.get_compiler(queryset.db).as_sql()
        statements.append(text)
        params.extend(args)
    *first, last = statements
    clauses = ", ".join(f"write_{n} AS ({text})" for n, text in enumerate(first))
    with db_connection.cursor() as cursor:
        cursor.execute(f"WITH {clauses} {last}", params)
