from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail sync"

    def ready(self) -> None:
        # Celery's autodiscovery imports only ``tasks``; the sending tasks live in their own module.
        from accounts.models import MailboxConnection
        from accounts.signals import sync_requested

        from . import send_tasks  # noqa: F401

        sync_requested.connect(_send_after_reconnect, sender=MailboxConnection,
                               dispatch_uid="mailsync.send_after_reconnect")


def _send_after_reconnect(sender: object, connection_id: Any, **kwargs: Any) -> None:
    """A (re)connected mailbox, or "Sync now": send the mail that waited for it."""
    from .sending import has_queued_mail, request_drain

    if has_queued_mail(connection_id):
        request_drain(connection_id)
