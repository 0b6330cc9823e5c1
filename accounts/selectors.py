"""Reads of a user's mailbox connection, for the settings page and the decisions around it."""

from __future__ import annotations

from .mailbox import SyncChoices
from .models import MailboxConnection, SyncRun, User


def get_connection(user: User) -> MailboxConnection | None:
    return MailboxConnection.objects.filter(user=user).prefetch_related("shared_with").first()


def follows_conversations(user: User) -> bool:
    """Whether later mail of conversations in Aspire is captured from this user's mailbox: the
    user's own choice, else the company's default. The one place this is decided."""
    if user.follow_conversations is not None:
        return user.follow_conversations
    return bool(user.company is not None and user.company.follow_conversations_default)


def latest_runs(connection: MailboxConnection) -> list[SyncRun]:
    """The latest run of each kind, for the status panel."""
    runs = []
    for kind in SyncRun.Kind:
        run = SyncRun.objects.filter(connection=connection, kind=kind).first()
        if run is not None:
            runs.append(run)
    return runs


def needs_signin(user: User, choices: SyncChoices) -> bool:
    """Saving these choices must go through the provider's sign-in first."""
    if not choices.wants_sync:
        return False
    connection = get_connection(user)
    return (
        connection is None
        or not connection.is_connected
        or connection.provider != choices.provider
        or connection.mailbox_address.lower() != choices.mailbox_address.lower()
    )


