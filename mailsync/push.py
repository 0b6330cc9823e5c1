"""Provider push for the Aspire folder: a Graph subscription or a Gmail watch per connection, kept
alive by renewal, and the webhooks' handling. A notification only makes the connection due: the
run itself is the ordinary capture run, so a missed notification costs nothing but latency (the
hourly run catches it)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.mailbox import fresh_grant, request_sync
from accounts.models import MailboxConnection
from accounts.provider_registry import get_provider
from providers.errors import ProviderError

from .models import MailSyncState

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=1)


def push_enabled() -> bool:
    return bool(settings.PUSH_BASE_URL)


def needs_push(state: MailSyncState) -> bool:
    return push_enabled() and bool(state.aspire_folder_id) and (
        not state.push_id or state.push_expires_at is None or state.push_expires_at - timezone.now() < RENEW_BEFORE
    )


def ensure_push(*, connection_id: uuid.UUID) -> bool:
    """Create or renew the connection's push channel when it is missing or expires within a day.
    Returns whether a provider call was made. Failures are logged, not raised: push is an
    accelerator, and the hourly run does not depend on it."""
    state = MailSyncState.objects.select_related("connection").get(connection_id=connection_id)
    connection = state.connection
    if not (connection.is_connected and connection.sync_aspire_folder and needs_push(state)):
        return False
    if connection.provider == MailboxConnection.Provider.GOOGLE and not settings.GOOGLE_PUBSUB_TOPIC:
        return False
    provider = get_provider(connection.provider)
    secret = state.push_secret or secrets.token_urlsafe(24)
    renewing = state.push_id if connection.provider == MailboxConnection.Provider.MICROSOFT else ""
    try:
        grant = fresh_grant(connection_id=connection.pk)
        channel = provider.watch_folder(
            grant, state.aspire_folder_id,
            notification_url=settings.PUSH_BASE_URL + reverse("mailsync_hooks:microsoft"),
            client_state=secret, topic=settings.GOOGLE_PUBSUB_TOPIC, channel_id=renewing,
        )
    except ProviderError as exc:
        if renewing:
            # A subscription Graph no longer knows: make a new one next time.
            MailSyncState.objects.filter(pk=state.pk).update(push_id="", push_expires_at=None)
        log.warning("push channel for %s not set up: %s", connection.pk, exc.__class__.__name__)
        return True
    MailSyncState.objects.filter(pk=state.pk).update(
        push_id=channel.id, push_expires_at=channel.expires_at, push_secret=secret
    )
    return True


def connections_needing_push() -> list[uuid.UUID]:
    soon = timezone.now() + RENEW_BEFORE
    return list(
        MailSyncState.objects.filter(
            connection__state=MailboxConnection.State.CONNECTED,
            connection__sync_aspire_folder=True,
        )
        .exclude(aspire_folder_id="")
        .filter(Q(push_id="") | Q(push_expires_at__isnull=True) | Q(push_expires_at__lt=soon))
        .values_list("connection_id", flat=True)
    )


def handle_graph_notifications(payload: dict[str, Any]) -> int:
    """Graph change and lifecycle notifications. Each is checked against the subscription's own
    secret (clientState); unknown or forged ones are ignored. Returns how many were accepted."""
    accepted = 0
    for item in payload.get("value", []):
        state = MailSyncState.objects.select_related("connection").filter(
            push_id=str(item.get("subscriptionId", ""))
        ).first()
        if state is None or not state.push_secret or not constant_time_compare(
            str(item.get("clientState", "")), state.push_secret
        ):
            continue
        accepted += 1
        if item.get("lifecycleEvent") in ("subscriptionRemoved", "reauthorizationRequired"):
            # Set it up again at the next renewal round; meanwhile the hourly run covers.
            MailSyncState.objects.filter(pk=state.pk).update(push_expires_at=None)
        request_sync(connection=state.connection, trigger="push")
    return accepted


class PushRefused(Exception):
    pass


def handle_pubsub_push(payload: dict[str, Any], *, token: str) -> bool:
    """A Gmail notification through a Pub/Sub push subscription. Returns whether a connection
    was found for it."""
    expected = settings.GOOGLE_PUBSUB_PUSH_TOKEN
    if not expected or not constant_time_compare(token, expected):
        raise PushRefused("bad token")
    try:
        data = json.loads(base64.b64decode(payload["message"]["data"]))
        address = str(data["emailAddress"]).lower()
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise PushRefused("not a Gmail notification") from exc
    connection = MailboxConnection.objects.filter(
        provider=MailboxConnection.Provider.GOOGLE, mailbox_address__iexact=address,
        state=MailboxConnection.State.CONNECTED,
    ).first()
    if connection is None:
        return False
    request_sync(connection=connection, trigger="push")
    return True
