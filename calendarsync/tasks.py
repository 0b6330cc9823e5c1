from __future__ import annotations

import random

from celery import shared_task

from accounts.models import MailboxConnection
from accounts.runs import RunBusy
from providers.errors import ProviderError, Throttled, TransientError

from .sync import run_calendar_sync

MAX_BACKOFF_SECONDS = 15 * 60


def _backoff(retries: int) -> float:
    # Exponential with jitter, so calendars throttled together don't come back together.
    return float(min(MAX_BACKOFF_SECONDS, 30 * 2**retries) * random.uniform(0.8, 1.2))  # noqa: S311


@shared_task(name="calendarsync.sync_calendar", queue="calendar", bind=True, max_retries=8)
def sync_calendar(self, connection_id: str, trigger: str = "schedule") -> str:  # type: ignore[no-untyped-def]
    """Sync the connection's calendar both ways. Safe to run twice: runs are leased per connection,
    creates at the provider are idempotent and appointments are upserted by event id."""
    try:
        run = run_calendar_sync(connection_id=connection_id, owner=self.request.id or "inline", trigger=trigger)
    except MailboxConnection.DoesNotExist:
        return "connection gone"
    except RunBusy:
        return "another run is syncing this calendar"
    except Throttled as exc:
        raise self.retry(exc=exc, countdown=min(exc.retry_after, MAX_BACKOFF_SECONDS) * random.uniform(1, 1.2)) from exc  # noqa: S311
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    except ProviderError as exc:
        # Permanent (revoked access): recorded on the run and the connection.
        return f"failed: {exc.__class__.__name__}"
    return str(run.outcome) if run else "not syncing the calendar"
