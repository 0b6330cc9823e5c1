"""Mailbox connections: connect, refuse, refresh, disconnect. One function per business action.

The sign-in itself is an OAuth authorization-code flow with PKCE at the provider; the state that
ties the callback to the person who started it lives in :mod:`accounts.signin`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from providers.base import Grant, MailboxIdentity, MailboxKind
from providers.errors import AuthRevoked, ProviderError

from .crypto import decrypt_json, encrypt_json
from .models import MailboxConnection, SyncRun, User
from .provider_registry import get_provider
from .signals import sync_requested

log = logging.getLogger(__name__)

REFRESH_LEEWAY_SECONDS = 300
SYNC_INTERVAL = dt.timedelta(hours=1)

REFUSED_KINDS = {
    MailboxKind.SHARED: "a shared mailbox",
    MailboxKind.ROOM: "a room mailbox",
    MailboxKind.EQUIPMENT: "an equipment mailbox",
    MailboxKind.GROUP: "a group or distribution list",
    MailboxKind.ALIAS: "an alias of another mailbox",
    MailboxKind.OTHER: "not a personal mailbox",
}
ONE_USER_PER_MAILBOX = (
    "One mailbox can serve only one Aspire user: when two users sync the same mailbox, the provider "
    "throttles it and mail such as month-end invoices gets stuck."
)


class MailboxRefused(Exception):
    """The mailbox can't be connected; ``message`` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SyncChoices:
    """What the user chose in the Sync section of User Settings."""

    sync_email: bool
    sync_calendar: bool
    sync_aspire_folder: bool
    calendar_privacy: str
    shared_with: tuple[str, ...]  # user ids, of the same company
    provider: str
    mailbox_address: str

    @property
    def wants_sync(self) -> bool:
        return self.sync_email or self.sync_calendar

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "shared_with": list(self.shared_with)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SyncChoices:
        return cls(**{**data, "shared_with": tuple(data["shared_with"])})  # type: ignore[arg-type]


def spread_offset(connection_id: object) -> dt.timedelta:
    """A stable minute-of-the-hour per connection, so hourly syncs spread over the hour."""
    digest = hashlib.sha256(str(connection_id).encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:4], "big") % 3600)


def next_hourly_sync(connection: MailboxConnection, after: dt.datetime) -> dt.datetime:
    hour = after.replace(minute=0, second=0, microsecond=0)
    candidate = hour + spread_offset(connection.pk)
    return candidate if candidate > after else candidate + SYNC_INTERVAL


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


def _apply_choices(connection: MailboxConnection, choices: SyncChoices) -> None:
    connection.sync_email = choices.sync_email
    connection.sync_calendar = choices.sync_calendar
    connection.sync_aspire_folder = choices.sync_aspire_folder and choices.sync_email
    connection.calendar_privacy = choices.calendar_privacy


def _set_shared_with(connection: MailboxConnection, choices: SyncChoices) -> None:
    colleagues = User.objects.filter(company_id=connection.company_id, pk__in=choices.shared_with).exclude(
        pk=connection.user_id
    )
    connection.shared_with.set(colleagues)


@transaction.atomic
def update_sync_settings(*, user: User, choices: SyncChoices) -> MailboxConnection:
    """Save choices that need no sign-in (the mailbox is already connected, or sync is off).
    Turning both Sync Email and Sync Calendar off disconnects."""
    connection = MailboxConnection.objects.select_for_update().filter(user=user).first()
    if connection is None:
        connection = MailboxConnection(
            user=user, company_id=user.tenant_id, provider=choices.provider or MailboxConnection.Provider.MICROSOFT,
            mailbox_address=choices.mailbox_address or user.email,
        )
    _apply_choices(connection, choices)
    connection.save()
    _set_shared_with(connection, choices)
    if not choices.wants_sync and connection.state != MailboxConnection.State.DISCONNECTED:
        disconnect_mailbox(connection=connection)
    return connection


def _check_identity(*, user: User, choices: SyncChoices, identity: MailboxIdentity) -> None:
    entered = choices.mailbox_address.lower()
    signed_in = identity.address.lower()
    if identity.kind is not MailboxKind.USER:
        raise MailboxRefused(
            f"{identity.address} is {REFUSED_KINDS[identity.kind]}, which Aspire can't sync. "
            "Shared mailboxes, distribution lists, groups and aliases don't work: please connect your own "
            "personal mailbox."
        )
    if signed_in != entered:
        if entered in {alias.lower() for alias in identity.aliases}:
            raise MailboxRefused(
                f"{choices.mailbox_address} is an alias of {identity.address}. Aliases can't be synced: "
                f"enter {identity.address} and save again."
            )
        raise MailboxRefused(
            f"You signed in as {identity.address}, but the email address entered is {choices.mailbox_address}. "
            "Sign in with the mailbox you entered, or change the address and save again."
        )
    # The same address with any provider (the help article's rule is per mailbox), or the same
    # provider account under another address.
    same_mailbox = Q(mailbox_address__iexact=signed_in)
    if identity.provider_account_id:
        same_mailbox |= Q(provider=choices.provider, provider_account_id=identity.provider_account_id)
    holder = (
        MailboxConnection.objects.filter(same_mailbox)
        .exclude(state=MailboxConnection.State.DISCONNECTED)
        .exclude(user=user)
        .select_related("user")
        .first()
    )
    if holder is not None:
        # Name a colleague; never reveal who holds it in another company.
        who = f"your colleague {holder.user}" if holder.company_id == user.company_id else "another Aspire user"
        raise MailboxRefused(f"{identity.address} is already connected to {who}. {ONE_USER_PER_MAILBOX}")


def connect_mailbox(
    *, user: User, choices: SyncChoices, grant: Grant, identity: MailboxIdentity
) -> MailboxConnection:
    """Store a new grant and the user's choices. Refuses when the mailbox is not the user's own
    personal mailbox or is already someone else's; then nothing of the attempt is saved, and the
    new grant is ended unless its provider account is one a connection of ours holds."""
    try:
        _check_identity(user=user, choices=choices, identity=identity)
        with transaction.atomic():
            connection = MailboxConnection.objects.select_for_update().filter(user=user).first()
            previous_grant = _load_grant(connection) if connection and connection.grant_ciphertext else None
            previous_provider = connection.provider if connection else None
            previous_account_id = connection.provider_account_id if connection else ""
            previous_address = connection.mailbox_address if connection else ""
            if connection is None:
                connection = MailboxConnection(user=user, company_id=user.tenant_id)
            same_mailbox = (
                previous_provider == choices.provider
                and connection.mailbox_address.lower() == identity.address.lower()
            )
            connection.provider = choices.provider
            connection.mailbox_address = identity.address.lower()
            connection.display_name = identity.display_name
            connection.provider_account_id = identity.provider_account_id
            connection.state = MailboxConnection.State.CONNECTED
            connection.connected_at = timezone.now()
            connection.last_error = ""
            connection.last_error_at = None
            connection.next_sync_at = timezone.now()
            _apply_choices(connection, choices)
            _store_grant(connection, grant)
            connection.save()
            _set_shared_with(connection, choices)
            if previous_grant is not None and previous_provider and not same_mailbox:
                # A different mailbox replaces the old one: end the old grant too (unless it is
                # the same provider account under a new address, which the new grant now holds).
                transaction.on_commit(partial(end_grant_unless_held, provider=previous_provider, grant=previous_grant,
                                              account_id=previous_account_id, address=previous_address))
            transaction.on_commit(lambda: sync_requested.send(sender=MailboxConnection, connection_id=connection.pk))
    except IntegrityError:
        end_grant_unless_held(provider=choices.provider, grant=grant, account_id=identity.provider_account_id,
                              address=identity.address)
        raise MailboxRefused(
            f"{identity.address} is already connected to another Aspire user. {ONE_USER_PER_MAILBOX}"
        ) from None
    except MailboxRefused:
        # An alias or a mailbox someone else connected signs in as an account that a connection
        # of ours may hold: revoking this grant at Google would end that connection's grant too.
        end_grant_unless_held(provider=choices.provider, grant=grant, account_id=identity.provider_account_id,
                              address=identity.address)
        raise
    log.info("mailbox connected", extra={"connection": str(connection.pk), "provider": connection.provider})
    return connection


def disconnect_mailbox(*, connection: MailboxConnection) -> None:
    """Stop syncing: end the grant at the provider (unless another connection of ours holds the
    same provider account), delete it here. Imported activities stay."""
    grant = _load_grant(connection) if connection.grant_ciphertext else None
    provider, account_id, address = connection.provider, connection.provider_account_id, connection.mailbox_address
    connection.grant_ciphertext = ""
    connection.token_expires_at = None
    connection.state = MailboxConnection.State.DISCONNECTED
    connection.sync_email = connection.sync_calendar = connection.sync_aspire_folder = False
    connection.next_sync_at = None
    connection.save(update_fields=["grant_ciphertext", "token_expires_at", "state", "sync_email", "sync_calendar",
                                   "sync_aspire_folder", "next_sync_at", "updated_at"])
    if grant is not None:
        transaction.on_commit(partial(end_grant_unless_held, provider=provider, grant=grant, account_id=account_id,
                                      address=address))


@transaction.atomic
def disconnect_own_mailbox(*, user: User) -> bool:
    """The Disconnect button: what unticking Sync Email and Sync Calendar and saving does. False
    when there was nothing to disconnect."""
    connection = MailboxConnection.objects.select_for_update().filter(user=user).first()
    if connection is None or connection.state == MailboxConnection.State.DISCONNECTED:
        return False
    disconnect_mailbox(connection=connection)
    return True


@transaction.atomic
def request_sync(*, connection: MailboxConnection, trigger: str = "manual") -> None:
    """Make the connection due now ("Sync now", a provider notification); the sync apps pick it up."""
    MailboxConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now())
    transaction.on_commit(
        lambda: sync_requested.send(sender=MailboxConnection, connection_id=connection.pk, trigger=trigger)
    )


def fresh_grant(*, connection_id: uuid.UUID | str, force: bool = False) -> Grant:
    """A grant whose access token is good for a few more minutes, refreshing (and saving the
    rotated refresh token) when needed, or always with ``force`` (the provider refused the access
    token). The row lock makes concurrent workers refresh once: with rotation, a second refresh
    with the old refresh token would fail."""
    with transaction.atomic():
        connection = MailboxConnection.objects.select_for_update().get(pk=connection_id)
        if connection.state != MailboxConnection.State.CONNECTED or not connection.grant_ciphertext:
            raise AuthRevoked("not connected")
        grant = _load_grant(connection)
        if not force and not grant.expires_within(REFRESH_LEEWAY_SECONDS):
            return grant
        try:
            grant = get_provider(connection.provider).refresh(grant)
        except AuthRevoked as exc:
            _mark_needs_signin(connection, exc.user_message)
            return_error: ProviderError = exc
        else:
            _store_grant(connection, grant)
            connection.save(update_fields=["grant_ciphertext", "token_expires_at", "updated_at"])
            return grant
    raise return_error


def mark_needs_signin(*, connection_id: uuid.UUID | str, message: str) -> None:
    with transaction.atomic():
        connection = MailboxConnection.objects.select_for_update().get(pk=connection_id)
        _mark_needs_signin(connection, message)


def _mark_needs_signin(connection: MailboxConnection, message: str) -> None:
    # One state, one message: runs that were going to resume won't until the user signs in again.
    SyncRun.objects.filter(connection=connection, outcome=SyncRun.Outcome.RETRYING).update(
        outcome=SyncRun.Outcome.FAILED, error=message)
    connection.state = MailboxConnection.State.NEEDS_SIGNIN
    connection.grant_ciphertext = ""
    connection.token_expires_at = None
    connection.last_error = message
    connection.last_error_at = timezone.now()
    connection.save(
        update_fields=["state", "grant_ciphertext", "token_expires_at", "last_error", "last_error_at", "updated_at"]
    )


def _store_grant(connection: MailboxConnection, grant: Grant) -> None:
    connection.grant_ciphertext = encrypt_json(
        {
            "data": grant.data,
            "access_token": grant.access_token,
            "expires_at": grant.expires_at.isoformat(),
            "scopes": list(grant.scopes),
        }
    )
    connection.token_expires_at = grant.expires_at


def _load_grant(connection: MailboxConnection) -> Grant:
    stored = decrypt_json(connection.grant_ciphertext)
    return Grant(
        data=stored["data"],
        access_token=stored["access_token"],
        expires_at=dt.datetime.fromisoformat(stored["expires_at"]),
        scopes=tuple(stored["scopes"]),
    )


def _holding(*, provider: str, account_id: str, address: str) -> QuerySet[MailboxConnection]:
    """Connections of that provider account: by its stable id (Google's ``sub``, Microsoft's object
    id), which survives a change of address and is what an alias signs in as; by address too, for
    rows connected before the id was recorded."""
    same_account = Q(mailbox_address__iexact=address)
    if account_id:
        same_account |= Q(provider_account_id=account_id)
    return MailboxConnection.objects.filter(same_account, provider=provider)


def end_grant_unless_held(*, provider: str, grant: Grant, account_id: str, address: str) -> None:
    """End a grant we no longer keep, at the provider where it allows that, unless a connection of
    ours holds a grant of the same provider account.

    This is the one rule for every revocation (a refused sign-in, a replaced mailbox, a
    disconnect). Google's revoke ends the whole grant of that Google account for this app, not
    just the token sent: refusing an alias (jim@ signs in as james@) or a mailbox already
    connected to someone else by revoking the new grant would sign the existing connection out
    too. Such a grant is only dropped here (it was never stored); the provider account stays
    granted, as it was before the attempt."""
    if _holding(provider=provider, account_id=account_id, address=address).exclude(grant_ciphertext="").exists():
        log.info("grant not revoked: its provider account is held by a connection", extra={"provider": provider})
        return
    try:
        get_provider(provider).revoke(grant)
    except ProviderError as exc:
        # The grant is deleted here whatever the provider says; note it for operators.
        log.warning("revoking a grant failed: %s", exc.__class__.__name__)
