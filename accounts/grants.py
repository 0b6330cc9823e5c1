"""A connection's grant: kept encrypted, renewed before it expires, ended when it is no longer ours,
and what happens when the provider refuses it ("needs sign-in")."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from providers.base import Grant
from providers.errors import AuthRevoked, ProviderError

from . import metrics
from .crypto import decrypt_json, encrypt_json
from .models import MailboxConnection, SyncRun
from .notices import notify_needs_signin
from .provider_registry import get_provider

log = logging.getLogger(__name__)

REFRESH_LEEWAY_SECONDS = 300
# Decrypted grants a worker process keeps (a few KB each).
GRANTS_KEPT = 2048


def fresh_grant(*, connection_id: uuid.UUID | str, force: bool = False,
                known: MailboxConnection | None = None) -> Grant:
    """A grant whose access token is good for a few more minutes, refreshing (and saving the
    rotated refresh token) when needed, or always with ``force`` (the provider refused the access
    token). The row lock makes concurrent workers refresh once: with rotation, a second refresh
    with the old refresh token would fail.

    ``known`` is the connection as the caller has just read it: while its access token is good,
    that is the grant, with no query (a refresh by another worker since then leaves this access
    token valid until it expires; a refused one comes back as ``force``)."""
    if known is not None and not force and known.state == MailboxConnection.State.CONNECTED \
            and known.grant_ciphertext:
        grant = load_grant(known)
        if not grant.expires_within(REFRESH_LEEWAY_SECONDS):
            return grant
    with transaction.atomic():
        connection = MailboxConnection.objects.select_for_update().get(pk=connection_id)
        if connection.state != MailboxConnection.State.CONNECTED or not connection.grant_ciphertext:
            raise AuthRevoked("not connected")
        grant = load_grant(connection)
        if not force and not grant.expires_within(REFRESH_LEEWAY_SECONDS):
            return grant
        try:
            grant = get_provider(connection.provider).refresh(grant)
        except AuthRevoked as exc:
            metrics.TOKENS_REFUSED.labels(provider=connection.provider).inc()
            _mark_needs_signin(connection, exc.user_message)
            return_error: ProviderError = exc
        else:
            metrics.TOKENS_REFRESHED.labels(provider=connection.provider).inc()
            store_grant(connection, grant)
            connection.save(update_fields=["grant_ciphertext", "token_expires_at", "updated_at"])
            return grant
    raise return_error


def mark_needs_signin(*, connection_id: uuid.UUID | str, message: str) -> None:
    with transaction.atomic():
        connection = MailboxConnection.objects.select_for_update().get(pk=connection_id)
        _mark_needs_signin(connection, message)


def _mark_needs_signin(connection: MailboxConnection, message: str) -> None:
    """The one place a connection goes to "needs sign-in". The caller holds its row lock, so the
    state read here is the one being replaced: the user is emailed once per transition (after the
    commit), not once per run that finds the grant refused."""
    newly = connection.state == MailboxConnection.State.CONNECTED
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
    if newly:
        # robust: a broker that cannot be reached is logged and must not fail the run that found this.
        transaction.on_commit(functools.partial(notify_needs_signin, connection_id=connection.pk), robust=True)


def store_grant(connection: MailboxConnection, grant: Grant) -> None:
    connection.grant_ciphertext = encrypt_json(
        {
            "data": grant.data,
            "access_token": grant.access_token,
            "expires_at": grant.expires_at.isoformat(),
            "scopes": list(grant.scopes),
        }
    )
    connection.token_expires_at = grant.expires_at


def load_grant(connection: MailboxConnection) -> Grant:
    """The connection's grant, decrypted. Decrypted grants are kept in this process's memory
    (never logged, never written anywhere) by their ciphertext: a renewed grant is a new
    ciphertext, so an entry lasts as long as the tokens it holds are the connection's."""
    grant = _decrypted(connection.grant_ciphertext, tuple(settings.TOKEN_ENCRYPTION_KEYS))
    # A copy: callers may change their grant's data (forgetting tokens), never the kept one.
    return dataclasses.replace(grant, data=dict(grant.data))


@functools.lru_cache(maxsize=GRANTS_KEPT)
def _decrypted(ciphertext: str, keys: tuple[str, ...]) -> Grant:
    # ``keys`` is part of the cache key: after a key rotation, nothing decrypted under the old
    # settings is served.
    stored = decrypt_json(ciphertext)
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
