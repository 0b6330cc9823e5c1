"""Celery tasks for sending mail from Aspire: thin wrappers around ``mailsync.sending``.

Kept apart from ``mailsync.tasks`` (the capture pipeline's); ``MailsyncConfig.ready`` imports this
module so the worker registers these tasks. They go to a queue of their own, ``send``: a drain
holds its worker thread for up to ``DRAIN_BUDGET_SECONDS`` while it sleeps at the mailbox's pace,
so a month-end batch of sends occupies the send workers, never the threads that capture mail.
"""

from __future__ import annotations

from celery import shared_task

from aspire_sync.celery import connection_task

from .sending import drain_queue, sweep


@connection_task(name="mailsync.send_queue", queue="send", max_retries=5)
def send_queue(connection_id: str, generation: int | None = None, *, owner: str) -> str:
    """Send a mailbox's due mail at its pace. Running it twice is harmless: a task whose drain was
    superseded returns at once, and one sender per mailbox holds the lease. Each message's outcome
    (and any wait a provider asked for) is recorded on the message; the next drain, if mail is
    left, is asked for by the service."""
    result = drain_queue(connection_id=connection_id, owner=owner, generation=generation)
    if result.superseded:
        return "superseded by a later request"
    if result.busy:
        return "another sender holds this mailbox"
    return f"sent {result.sent}"


@shared_task(name="mailsync.send_due_mail", queue="send", max_retries=0, ignore_result=True)
def send_due_mail() -> int:
    """Every minute (beat): start what the database says should be sending (mail whose wait is
    over, a message left sending by a dead worker, a drain whose task was lost)."""
    return sweep()
