"""Celery tasks for sending mail from Aspire: thin wrappers around ``mailsync.sending``.

Kept apart from ``mailsync.tasks`` (the capture pipeline's); ``MailsyncConfig.ready`` imports this
module so the worker registers these tasks.
"""

from __future__ import annotations

import random

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from accounts.models import MailboxConnection

from .sending import connections_with_due_mail, drain_queue

MAX_BACKOFF_SECONDS = 10 * 60


@shared_task(name="mailsync.send_queue", queue="mail", bind=True, max_retries=5, acks_late=True)
def send_queue(self, connection_id: str) -> str:  # type: ignore[no-untyped-def]
    """Send a mailbox's due mail at its pace. Running it twice is harmless: one sender per mailbox
    holds the lease and the others return at once. Each message's outcome (and any wait a
    provider asked for, Retry-After included) is recorded on the message by the service; this
    only schedules the next look at the queue."""
    try:
        result = drain_queue(connection_id=connection_id, owner=self.request.id or "inline")
    except MailboxConnection.DoesNotExist:
        return "connection gone"
    except DatabaseError as exc:
        countdown = min(MAX_BACKOFF_SECONDS, 15 * 2**self.request.retries) * random.uniform(0.8, 1.2)  # noqa: S311
        raise self.retry(exc=exc, countdown=countdown) from exc
    if result.busy:
        return "another sender holds this mailbox"
    if result.resume_at is not None:
        countdown = max(0.0, (result.resume_at - timezone.now()).total_seconds())
        send_queue.apply_async((connection_id,), countdown=countdown)
    return f"sent {result.sent}"


@shared_task(name="mailsync.send_due_mail", queue="mail", max_retries=0, ignore_result=True)
def send_due_mail() -> int:
    """Every minute (beat): start a sender for each connected mailbox with mail whose wait is over
    (a retry after a backoff, mail queued while its mailbox waited for a sign-in)."""
    connection_ids = connections_with_due_mail()
    for connection_id in connection_ids:
        send_queue.delay(str(connection_id))
    return len(connection_ids)
