"""How long run records are kept: the last ``SYNC_RUN_KEEP_PER_CONNECTION`` runs of each
connection, and besides those every run that did not simply succeed (failed, paused, partial) for
``SYNC_RUN_KEEP_FAILURES_DAYS``. A run still running is never pruned. Beat runs this hourly
(``aspire_sync.tasks.prune_records``)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import SyncRun

BATCH = 5000
FAILURES = (SyncRun.Outcome.FAILED, SyncRun.Outcome.RETRYING, SyncRun.Outcome.PARTIAL)


def prune_sync_runs(*, now: dt.datetime | None = None) -> int:
    """Delete the runs past retention, a batch at a time (short transactions, no long lock).
    Returns how many were deleted."""
    keep = int(settings.SYNC_RUN_KEEP_PER_CONNECTION)
    failures_since = (now or timezone.now()) - dt.timedelta(days=int(settings.SYNC_RUN_KEEP_FAILURES_DAYS))
    table = connection.ops.quote_name(SyncRun._meta.db_table)
    failures = ", ".join(["%s"] * len(FAILURES))
    # The newest runs are counted over all of a connection's runs (a window, before any filter).
    sql = f"""
        DELETE FROM {table} WHERE id IN (
            SELECT id FROM (
                SELECT id, outcome, started_at,
                       ROW_NUMBER() OVER (PARTITION BY connection_id ORDER BY started_at DESC, id DESC) AS newest
                FROM {table}
            ) ranked
            WHERE newest > %s AND outcome <> %s AND NOT (outcome IN ({failures}) AND started_at >= %s)
            LIMIT %s
        )"""  # noqa: S608 (the table name is ours; every value is a parameter)
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [keep, SyncRun.Outcome.RUNNING, *FAILURES, failures_since, BATCH])
            count = cursor.rowcount
        deleted += count
        if count < BATCH:
            return deleted
