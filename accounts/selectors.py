"""Reads of mailbox connections: a user's, for the settings page and the decisions around it, and a
company's, for its admins' Sync health page."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from .mailbox import SyncChoices
from .models import MailboxConnection, PushChannel, SyncRun, User
from .notices import reconnect_ask_available_at
from .push import channel_for, channel_label, describe_channel
from .tenancy import scoped


def get_connection(user: User) -> MailboxConnection | None:
    return MailboxConnection.objects.filter(user=user).prefetch_related("shared_with").first()


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


# -- Sync health: every staff member of a company and their connection -------------------------


@dataclass(frozen=True)
class PushState:
    label: str
    ok: bool
    words: str


@dataclass(frozen=True)
class RunSummary:
    kind: str
    outcome: str
    started_at: dt.datetime

    @property
    def outcome_display(self) -> str:
        return str(SyncRun.Outcome(self.outcome).label)


@dataclass(frozen=True)
class HealthRow:
    user: User
    connection: MailboxConnection | None
    runs: list[RunSummary]
    push: list[PushState]
    ask_available_at: dt.datetime | None

    @property
    def state(self) -> str:
        return self.connection.state if self.connection else MailboxConnection.State.DISCONNECTED

    @property
    def can_ask_to_reconnect(self) -> bool:
        return self.connection is not None and not self.connection.is_connected


def _latest_run(kind: str, field: str) -> Subquery:
    return Subquery(
        SyncRun.objects.filter(connection_id=OuterRef("mailbox__id"), kind=kind)
        .order_by("-started_at").values(field)[:1]
    )


def sync_health(viewer: User) -> list[HealthRow]:
    """Every active member of the viewer's company with their connection, latest runs and push
    channels, in two queries whatever the company's size (the latest run of each kind is read
    through the (connection, kind, started_at) index, one row each)."""
    annotations = {f"{kind}_{field}": _latest_run(kind, field)
                   for kind in SyncRun.Kind for field in ("outcome", "started_at")}
    users = list(scoped(User, viewer).filter(is_active=True).select_related("mailbox", "company")
                 .annotate(**annotations))
    channels: dict[uuid.UUID, dict[str, PushChannel]] = {}
    for channel in PushChannel.objects.filter(connection__company_id=viewer.tenant_id):
        channels.setdefault(channel.connection_id, {})[channel.purpose] = channel
    now = timezone.now()
    rows = []
    for user in users:
        connection: MailboxConnection | None = getattr(user, "mailbox", None)
        runs = [RunSummary(kind=kind.label, outcome=getattr(user, f"{kind}_outcome"),
                           started_at=getattr(user, f"{kind}_started_at"))
                for kind in SyncRun.Kind if getattr(user, f"{kind}_outcome", None)]
        push = [] if connection is None or connection.state == MailboxConnection.State.DISCONNECTED else [
            PushState(channel_label(connection, purpose), *describe_channel(
                connection, purpose, channel_for(connection, purpose, channels.get(connection.pk, {})), now=now))
            for purpose in PushChannel.Purpose
        ]
        rows.append(HealthRow(user=user, connection=connection, runs=runs, push=push,
                              ask_available_at=reconnect_ask_available_at(connection) if connection else None))
    return rows


@dataclass(frozen=True)
class HealthSummary:
    """The head of Sync health: how many are connected, who must sign in again (named, as they
    are the ones to act on), how many are not connected."""

    connected: int
    needs_signin: list[HealthRow]
    not_connected: int


def health_summary(rows: list[HealthRow]) -> HealthSummary:
    states = [row.state for row in rows]
    return HealthSummary(connected=states.count(MailboxConnection.State.CONNECTED),
                         needs_signin=[row for row in rows if row.state == MailboxConnection.State.NEEDS_SIGNIN],
                         not_connected=states.count(MailboxConnection.State.DISCONNECTED))
