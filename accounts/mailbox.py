"""Mailbox connections: connect, refuse, disconnect, ask for a sync. One function per business
action; the grant's own life (renewal, "needs sign-in", revocation) is :mod:`accounts.grants`, and
the reads the settings page needs are :mod:`accounts.selectors`.

The sign-in itself is an OAuth authorization-code flow with PKCE at the provider; the state that
ties the callback to the person who started it lives in :mod:`accounts.signin`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from providers.base import Grant, MailboxIdentity, MailboxKind

from . import metrics
from .grants import end_grant_unless_held, load_grant, store_grant
from .models import MailboxConnection, SyncRun, User
from .signals import sync_requested

log = logging.getLogger(__name__)


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
    had_aspire_folder = connection.sync_aspire_folder
    _apply_choices(connection, choices)
    connection.save()
    _set_shared_with(connection, choices)
    if not choices.wants_sync and connection.state != MailboxConnection.State.DISCONNECTED:
        disconnect_mailbox(connection=connection)
    elif connection.sync_aspire_folder != had_aspire_folder:
        # The Aspire folder's push is stopped (or made) at once, as following's is.
        from .push import mail_push_changed

        mail_push_changed(connections=[connection])
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
            previous_grant = load_grant(connection) if connection and connection.grant_ciphertext else None
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
            store_grant(connection, grant)
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
    grant = load_grant(connection) if connection.grant_ciphertext else None
    provider, account_id, address = connection.provider, connection.provider_account_id, connection.mailbox_address
    connection.grant_ciphertext = ""
    connection.token_expires_at = None
    connection.state = MailboxConnection.State.DISCONNECTED
    connection.sync_email = connection.sync_calendar = connection.sync_aspire_folder = False
    connection.next_sync_at = None
    connection.save(update_fields=["grant_ciphertext", "token_expires_at", "state", "sync_email", "sync_calendar",
                                   "sync_aspire_folder", "next_sync_at", "updated_at"])
    if grant is not None:
        # accounts.push imports this module (request_sync), so it is imported here.
        from .push import stop_channels

        # In this order: a channel is stopped with the grant, which is ended after.
        transaction.on_commit(partial(stop_channels, connection_id=connection.pk, provider=provider, grant=grant))
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
    if trigger == SyncRun.Trigger.PUSH:
        metrics.push_received(connection_id=connection.pk, kinds=(SyncRun.Kind.MAIL, SyncRun.Kind.CALENDAR))
    transaction.on_commit(
        lambda: sync_requested.send(sender=MailboxConnection, connection_id=connection.pk, trigger=trigger)
    )


