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
        from activities import record_actions

        record_actions.register("write-email", _write_email)
        for mode in ("reply", "reply-all", "forward"):
            record_actions.register(mode, _answer(mode))


def _write_email(record: Any, user: Any) -> Any:
    """"Write email" on a record's page: to a contact, or regarding an opportunity, a property or a
    work ticket (with that record's contacts as recipients)."""
    from django.urls import reverse

    from activities import regarding
    from activities.record_actions import RecordAction
    from crm.models import Contact

    if isinstance(record, Contact):
        return RecordAction("Write email", reverse("mailsync:compose_to_contact", args=[record.pk]))
    if type(record) in regarding.BY_MODEL:
        key = regarding.kind_of(record).key
        return RecordAction("Write email", reverse("mailsync:compose_regarding", args=[key, record.pk]))
    return None


def _answer(mode: str) -> Any:
    """Reply, Reply all and Forward on an email's page."""

    def action_for(record: Any, user: Any) -> Any:
        from django.urls import reverse

        from activities.models import Activity
        from activities.record_actions import RecordAction

        from .replies import Mode

        if isinstance(record, Activity) and record.kind == Activity.Kind.EMAIL:
            return RecordAction(Mode(mode).label, reverse("mailsync:reply", args=[record.pk, mode]))
        return None

    return action_for


def _send_after_reconnect(sender: object, connection_id: Any, **kwargs: Any) -> None:
    """A (re)connected mailbox, or "Sync now": send the mail that waited for it."""
    from .sending import has_queued_mail, request_drain

    if has_queued_mail(connection_id):
        request_drain(connection_id)
