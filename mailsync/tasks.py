from __future__ import annotations

import random
import uuid

from celery import shared_task

from accounts.models import MailboxConnection
from accounts.runs import RunBusy
from providers.errors import ProviderError, Throttled, TransientError

from .capture import run_capture
from .models import MailSyncState
from .push import connections_needing_push, ensure_push, needs_push

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
    if run is not None and needs_push(MailSyncState.objects.get(connection_id=run.connection_id)):
        ensure_push_channel.apply_async((connection_id,), queue="mail")
    return str(run.outcome) if run else "not capturing mail"


@shared_task(name="mailsync.ensure_push", queue="mail", ignore_result=True)
def ensure_push_channel(connection_id: str) -> None:
    try:
        ensure_push(connection_id=uuid.UUID(connection_id))
    except MailSyncState.DoesNotExist:
        return


@shared_task(name="mailsync.renew_push", queue="mail", ignore_result=True)
def renew_push_channels() -> int:
    """Hourly: create the missing push channels and renew those expiring within a day."""
    ids = connections_needing_push()
    for connection_id in ids:
        ensure_push_channel.apply_async((str(connection_id),), queue="mail")
    return len(ids)
