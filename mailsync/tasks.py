from __future__ import annotations

import random

from celery import shared_task

from accounts.models import MailboxConnection
from accounts.runs import RunBusy
from providers.errors import ProviderError, Throttled, TransientError

from .capture import run_capture

MAX_BACKOFF_SECONDS = 15 * 60


def _backoff(retries: int) -> float:
    # Exponential with jitter, so mailboxes throttled together don't come back together.
    return float(min(MAX_BACKOFF_SECONDS, 30 * 2**retries) * random.uniform(0.8, 1.2))  # noqa: S311


@shared_task(name="mailsync.capture_mailbox", queue="mail", bind=True, max_retries=8)
def capture_mailbox(self, connection_id: str, trigger: str = "schedule") -> str:  # type: ignore[no-untyped-def]
    """Capture the connection's Aspire folder. Safe to run twice: runs are leased per connection
    and every message is captured at most once (see mailsync.capture)."""
    try:
        run = run_capture(connection_id=connection_id, owner=self.request.id or "inline", trigger=trigger)
    except MailboxConnection.DoesNotExist:
        return "connection gone"
    except RunBusy:
        return "another run is capturing this mailbox"
    except Throttled as exc:
        delay = min(exc.retry_after, MAX_BACKOFF_SECONDS) * random.uniform(1, 1.2)  # noqa: S311
        raise self.retry(exc=exc, countdown=delay) from exc
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    except ProviderError as exc:
        # Permanent (revoked access, unsupported mailbox): recorded on the run and the connection.
        return f"failed: {exc.__class__.__name__}"
    return str(run.outcome) if run else "not capturing mail"
