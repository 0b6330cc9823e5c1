"""Provider push for mail and calendar, in one place: Graph subscriptions (the Aspire folder and the
calendar), Gmail watches (through Pub/Sub) and Google Calendar channels.

Setting a channel up, renewing or replacing it, backing off after a failed set-up, and reading what
the providers send (the payload's shape and size, the channel's secret, the connection still
connected, Graph's lifecycle events, Pub/Sub's signed token and replays) happen here for both sync
apps, which call ``ensure_channel`` from their runs; so mail and calendar cannot drift apart.

A notification only makes the connection due (``request_sync``): the sync itself is the ordinary
run, so a lost notification costs latency, never data (the hourly run catches up). Push is off
while ``PUSH_BASE_URL`` is empty.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from providers import base
from providers.base import Grant
from providers.errors import NotFound, ProviderError
from providers.google.pubsub import PushTokenInvalid, verify_push_token

from .mailbox import request_sync
from .models import MailboxConnection, PushChannel
from .moments import moment
from .provider_registry import get_provider

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=1)
# After a failed set-up, wait before trying again, so idle runs stay at one request.
RETRY_AFTER = dt.timedelta(hours=6)
# Graph delivers notifications in small batches; a request with more than this is not Graph's.
MAX_NOTIFICATIONS = 100
# What any provider's notification fits in, with room to spare (a Graph batch of 100 is ~60 KB).
MAX_BODY = 256 * 1024
# Pub/Sub's tokens live an hour; a message id is remembered longer than any token that carried it.
REPLAY_WINDOW = dt.timedelta(hours=2)

Purpose = PushChannel.Purpose
# Channels on mail folders: the Aspire folder's, and the Inbox's and Sent's when following conversations.
MAIL_PURPOSES = (Purpose.MAIL, Purpose.FOLLOW_INBOX, Purpose.FOLLOW_SENT)
# Following conversations reads the Inbox and Sent. Graph: a subscription per folder.
FOLLOWED_GRAPH_FOLDERS = ((Purpose.FOLLOW_INBOX, "inbox"), (Purpose.FOLLOW_SENT, "sentitems"))
# Gmail has one watch per mailbox: following adds the Inbox and Sent system labels to the Aspire label.
FOLLOWED_GMAIL_LABEL_OF = {Purpose.FOLLOW_INBOX: "INBOX", Purpose.FOLLOW_SENT: "SENT"}
FOLLOWED_GMAIL_LABELS = tuple(FOLLOWED_GMAIL_LABEL_OF.values())


class PushRefused(Exception):
    """Not from the provider: a bad signature, audience, sender or secret (403)."""


class PushMalformed(ValueError):
    """Not a notification of the expected shape (400); ``str()`` says what was wrong."""


class PushTooLarge(ValueError):
    """More than one notification request may carry (413)."""


def push_enabled() -> bool:
    return bool(settings.PUSH_BASE_URL)


def hook_url(name: str) -> str:
    return str(settings.PUSH_BASE_URL) + reverse(f"accounts:{name}")


def pubsub_audience() -> str:
    """The audience Pub/Sub's tokens carry: the setting, or (Pub/Sub's own default) the push URL."""
    return str(settings.GOOGLE_PUBSUB_AUDIENCE or hook_url("hook_google_pubsub"))


# -- setting channels up ---------------------------------------------------------------------------


def watches(connection: MailboxConnection, purpose: str) -> bool:
    """Whether the connection's sync settings have work a channel of this purpose would speed up,
    push or not. Graph's Aspire-folder subscription needs that folder synced; Gmail's one watch
    serves the Aspire label and, while its user follows conversations, the Inbox and Sent."""
    if purpose == Purpose.CALENDAR:
        return connection.sync_calendar
    if purpose != Purpose.MAIL and not connection.user.follows_conversations:
        return False
    if purpose == Purpose.MAIL and connection.provider == MailboxConnection.Provider.MICROSOFT:
        return connection.sync_email and connection.sync_aspire_folder
    return connection.reads_mail


def wants_push(connection: MailboxConnection, purpose: str) -> bool:
    if not (push_enabled() and connection.is_connected):
        return False
    if (purpose in MAIL_PURPOSES and connection.provider == MailboxConnection.Provider.GOOGLE
            and not settings.GOOGLE_PUBSUB_TOPIC):
        return False
    return watches(connection, purpose)


def setup_due(channel: PushChannel, *, provider: str, watched: str, now: dt.datetime) -> bool:
    """Whether the channel needs a provider call: missing, expiring within a day, watching another
    folder, or a Graph subscription made without lifecycle notifications (which can only be had by
    making a new one). Never sooner than ``RETRY_AFTER`` after a failed attempt."""
    if channel.failed_at is not None and now - channel.failed_at < RETRY_AFTER:
        return False
    if not channel.channel_id or channel.expires_at is None or channel.expires_at - now < RENEW_BEFORE:
        return True
    if channel.watched != watched:
        return True
    return provider == MailboxConnection.Provider.MICROSOFT and not channel.lifecycle


def ensure_channel(*, connection: MailboxConnection, purpose: str, grant: Grant, watched: str = "",
                   force: bool = False) -> bool:
    """Set up, renew or replace the connection's channel for ``purpose`` when ``setup_due`` says so,
    or at once with ``force`` (Graph asked for reauthorization: renewing reauthorizes). ``watched``
    is the mail folder's id. Returns whether a provider call was made. Failures are logged and
    recorded, never raised: push only speeds things up."""
    if not wants_push(connection, purpose) or (purpose in MAIL_PURPOSES and not watched):
        return False
    channel, _ = PushChannel.objects.get_or_create(connection=connection, purpose=purpose,
                                                   defaults={"watched": watched})
    now = timezone.now()
    if not (force and channel.channel_id) and not setup_due(channel, provider=connection.provider,
                                                             watched=watched, now=now):
        return False
    secret = channel.secret or secrets.token_urlsafe(24)
    current = base.PushChannel(id=channel.channel_id, expires_at=channel.expires_at or now,
                               resource_id=channel.resource_id, watched=channel.watched,
                               lifecycle=channel.lifecycle) if channel.channel_id else None
    try:
        made = _watch(connection, purpose, grant, watched=watched, secret=secret, renew=current)
    except ProviderError as exc:
        log.warning("%s push for %s not set up: %s", purpose, connection.pk, exc.__class__.__name__)
        gone = {"channel_id": "", "resource_id": "", "expires_at": None} if isinstance(exc, NotFound) else {}
        PushChannel.objects.filter(pk=channel.pk).update(failed_at=now, **gone)
        return True
    PushChannel.objects.filter(pk=channel.pk).update(
        channel_id=made.id, resource_id=made.resource_id, watched=watched, expires_at=made.expires_at,
        lifecycle=made.lifecycle, secret=secret, failed_at=None,
    )
    return True


def mail_channels(connection: MailboxConnection, *, aspire_folder_id: str) -> dict[str, str]:
    """The channels on mail folders the connection wants now, purpose -> what each watches: the
    Aspire folder's, and while the user follows conversations, the Inbox's and Sent's (Gmail:
    the same one watch, on those labels too)."""
    following = connection.user.follows_conversations
    if connection.provider == MailboxConnection.Provider.GOOGLE:
        labels = (aspire_folder_id, *FOLLOWED_GMAIL_LABELS) if following else (aspire_folder_id,)
        return {Purpose.MAIL: ",".join(label for label in labels if label)}
    wanted: dict[str, str] = {Purpose.MAIL: aspire_folder_id}
    if following:
        wanted.update(FOLLOWED_GRAPH_FOLDERS)
    return wanted


def ensure_mail_channels(*, connection: MailboxConnection, grant: Grant, aspire_folder_id: str) -> int:
    """Make the connection's mail channels what ``mail_channels`` says: each wanted one set up or
    renewed when due (``ensure_channel``), and each one no longer wanted (following turned off)
    stopped at the provider at once rather than left to lapse. Gmail's one watch goes back to the
    Aspire label alone by being made again, which replaces it. Returns the provider calls made.
    Without push (no ``PUSH_BASE_URL``) no channel is made, so none is looked for: an idle run
    stays at its few statements."""
    if not push_enabled():
        return 0
    wanted = {purpose: watched for purpose, watched in mail_channels(
        connection, aspire_folder_id=aspire_folder_id).items() if watched and wants_push(connection, purpose)}
    calls = sum(ensure_channel(connection=connection, purpose=purpose, grant=grant, watched=watched)
                for purpose, watched in wanted.items())
    unwanted = list(PushChannel.objects.filter(connection=connection, purpose__in=MAIL_PURPOSES).exclude(
        purpose__in=wanted))
    adapter = get_provider(connection.provider)
    for channel in unwanted:
        if channel.channel_id:
            _stop(adapter, grant, channel)
            calls += 1
    if unwanted:
        PushChannel.objects.filter(pk__in=[channel.pk for channel in unwanted]).delete()
    return calls


def aspire_folder_of(connection: MailboxConnection) -> str | None:
    """The Aspire folder (label) the connection's mail channel watches, None when it has none yet:
    what a change of the following setting needs to know outside a mail run."""
    watched = PushChannel.objects.filter(connection=connection, purpose=Purpose.MAIL).exclude(
        channel_id="").values_list("watched", flat=True).first()
    if not watched:
        return None
    first = watched.split(",")[0]
    return "" if first in FOLLOWED_GMAIL_LABELS else first


def mail_push_changed(*, connections: Iterable[MailboxConnection]) -> None:
    """Following was turned on or off for these connections' users (their own choice, or their
    company's default), or Sync Aspire Folder: after the commit, their mail channels are made or
    stopped in a worker, so a folder no longer read stops calling at once (or a new one starts
    to) rather than at the next run."""
    from .tasks import refresh_mail_channels

    ids = [str(connection.pk) for connection in connections
           if push_enabled() and connection.is_connected and connection.sync_email]
    if ids:
        transaction.on_commit(lambda: [refresh_mail_channels.delay(connection_id) for connection_id in ids])


def _watch(connection: MailboxConnection, purpose: str, grant: Grant, *, watched: str, secret: str,
           renew: base.PushChannel | None) -> base.PushChannel:
    provider = get_provider(connection.provider)
    microsoft = connection.provider == MailboxConnection.Provider.MICROSOFT
    lifecycle_url = hook_url("hook_microsoft_lifecycle") if microsoft else ""
    if purpose in MAIL_PURPOSES:
        return provider.watch_folder(grant, watched, notification_url=hook_url("hook_microsoft_mail"),
                                     lifecycle_url=lifecycle_url, client_state=secret,
                                     topic=settings.GOOGLE_PUBSUB_TOPIC, renew=renew)
    url = hook_url("hook_microsoft_calendar" if microsoft else "hook_google_calendar")
    return provider.calendar.watch(grant, notification_url=url, lifecycle_url=lifecycle_url,
                                   client_state=secret, renew=renew)


def stop_channels(*, connection_id: uuid.UUID, provider: str, grant: Grant) -> None:
    """Disconnecting: end the connection's channels at the provider, so it stops calling (Graph
    deletes the subscription, Gmail stops the watch, Google Calendar stops the channel), then forget
    them. Runs before the grant is ended, while it still works. A refusal is logged, never raised:
    the channel then lapses on its own, and its notifications are ignored (not connected)."""
    # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-delete
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/channels/stop
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/stop
    channels = list(PushChannel.objects.filter(connection_id=connection_id).exclude(channel_id=""))
    adapter = get_provider(provider)
    try:
        if channels and grant.expires_within(60):
            grant = adapter.refresh(grant)
        for channel in channels:
            _stop(adapter, grant, channel)
    except ProviderError as exc:  # the grant could not be renewed: nothing can be stopped
        log.warning("push for %s not stopped: %s", connection_id, exc.__class__.__name__)
    PushChannel.objects.filter(connection_id=connection_id).delete()


def _stop(adapter: base.MailProvider, grant: Grant, channel: PushChannel) -> None:
    """End one channel at the provider; a refusal is logged (it then lapses, and what it sends is
    ignored once the channel is forgotten)."""
    watch = base.PushChannel(id=channel.channel_id, expires_at=channel.expires_at or timezone.now(),
                             resource_id=channel.resource_id, watched=channel.watched, lifecycle=channel.lifecycle)
    try:
        if channel.purpose == Purpose.CALENDAR:
            adapter.calendar.stop_watch(grant, watch)
        else:
            adapter.stop_watching(grant, watch)
    except ProviderError as exc:
        log.warning("%s push for %s not stopped: %s", channel.purpose, channel.connection_id, exc.__class__.__name__)


def _later(connection_id: uuid.UUID, purpose: str, *, force: bool = False, then_sync: bool = False) -> None:
    """Set the channel up in a worker, after the current transaction (a webhook answers at once)."""
    from .tasks import ensure_push_channel

    transaction.on_commit(lambda: ensure_push_channel.apply_async(
        (str(connection_id), purpose), {"force": force, "then_sync": then_sync}))


# -- what the providers send -------------------------------------------------------------------


def parse_graph_notifications(body: bytes) -> list[Mapping[str, Any]]:
    """The notifications of a Graph webhook request: ``{"value": [{...}, ...]}`` with at most
    ``MAX_NOTIFICATIONS`` objects. Anything else is ``PushMalformed`` (or ``PushTooLarge``)."""
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/changenotificationcollection
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise PushMalformed("The body is not JSON.") from exc
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise PushMalformed('Expected {"value": [...]}.')
    if len(items) > MAX_NOTIFICATIONS:
        raise PushTooLarge(f"At most {MAX_NOTIFICATIONS} notifications per request.")
    if not all(isinstance(item, dict) for item in items):
        raise PushMalformed("Each notification is an object.")
    return items


def handle_graph_notifications(items: list[Mapping[str, Any]]) -> int:
    """Graph change and lifecycle notifications, for mail folders and calendars alike. Each is
    checked against its subscription's own secret (clientState), its connection still connected;
    unknown or forged ones are ignored. The subscriptions are looked up in one query. Returns how
    many were accepted."""
    def subscription_of(item: Mapping[str, Any]) -> str:
        value = item.get("subscriptionId")
        return value if isinstance(value, str) else ""

    ids = {subscription_of(item) for item in items} - {""}
    channels = {
        channel.channel_id: channel
        for channel in PushChannel.objects.select_related("connection").filter(
            channel_id__in=ids, connection__state=MailboxConnection.State.CONNECTED)
    } if ids else {}
    accepted = 0
    due: dict[uuid.UUID, MailboxConnection] = {}
    for item in items:
        channel = channels.get(subscription_of(item))
        client_state = item.get("clientState")
        if channel is None or not channel.secret or not isinstance(client_state, str) or not constant_time_compare(
                client_state, channel.secret):
            continue
        accepted += 1
        # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
        event = item.get("lifecycleEvent")
        if event == "reauthorizationRequired":
            _later(channel.connection_id, channel.purpose, force=True)
        elif event == "subscriptionRemoved":
            PushChannel.objects.filter(pk=channel.pk).update(channel_id="", resource_id="", expires_at=None,
                                                             failed_at=None)
            _later(channel.connection_id, channel.purpose, then_sync=True)
        else:  # a change, or "missed": sync now
            due[channel.connection_id] = channel.connection
    for connection in due.values():
        request_sync(connection=connection, trigger="push")
    return accepted


def handle_google_calendar(headers: Mapping[str, str]) -> bool:
    """A Google Calendar channel notification (all in its headers). The first one, ``sync``, only
    confirms the channel; ``exists`` means the calendar changed."""
    # Reference: https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications
    channel_id, token = headers.get("X-Goog-Channel-ID", ""), headers.get("X-Goog-Channel-Token", "")
    if not channel_id or not token:
        return False
    channel = PushChannel.objects.select_related("connection").filter(
        channel_id=channel_id, purpose=Purpose.CALENDAR, connection__state=MailboxConnection.State.CONNECTED,
    ).first()
    if channel is None or not channel.secret or not constant_time_compare(token, channel.secret):
        return False
    if headers.get("X-Goog-Resource-ID", "") != channel.resource_id:
        return False
    if headers.get("X-Goog-Resource-State") == "exists":
        request_sync(connection=channel.connection, trigger="push")
    return True


def handle_gmail_push(*, authorization: str, body: bytes) -> bool:
    """A Gmail notification through a Pub/Sub push subscription, authenticated by the OIDC token
    Pub/Sub signs (audience and service account both settings). A message already seen (by its
    ``messageId``) is dropped. Returns whether a connection was made due."""
    # Reference: https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
    # Reference: https://developers.google.com/workspace/gmail/api/guides/push#receiving_notifications
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    service_account = str(settings.GOOGLE_PUBSUB_SERVICE_ACCOUNT)
    if not token or not service_account:
        raise PushRefused("no token")
    try:
        verify_push_token(token, audience=pubsub_audience(), service_account=service_account,
                          certs_url=settings.GOOGLE_PUBSUB_CERTS_URL, ca_bundle=settings.PROVIDER_CA_BUNDLE)
    except PushTokenInvalid as exc:
        raise PushRefused(str(exc)) from exc
    try:
        envelope = json.loads(body)
        message = envelope["message"]
        message_id = message["messageId"]
        data = json.loads(base64.b64decode(message["data"], validate=True))
        address = data["emailAddress"]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise PushMalformed("Not a Gmail notification.") from exc
    if not isinstance(message_id, str) or not message_id or not isinstance(address, str):
        raise PushMalformed("Not a Gmail notification.")
    digest = hashlib.sha256(message_id.encode()).hexdigest()
    if not cache.add(f"push:pubsub:{digest}", 1, timeout=int(REPLAY_WINDOW.total_seconds())):
        return False  # a replay, or Pub/Sub delivering again what was handled
    connection = MailboxConnection.objects.filter(
        provider=MailboxConnection.Provider.GOOGLE, mailbox_address__iexact=address.strip(),
        state=MailboxConnection.State.CONNECTED,
    ).first()
    if connection is None:
        return False
    request_sync(connection=connection, trigger="push")
    return True


# -- what Sync health shows ------------------------------------------------------------------------


def channel_label(connection: MailboxConnection, purpose: str) -> str:
    """What a push channel watches, in the connection's provider's own words."""
    names = connection.folder_names
    return {
        Purpose.MAIL: names.aspire,
        Purpose.CALENDAR: "Calendar",
        Purpose.FOLLOW_INBOX: f"{names.inbox} (following conversations)",
        Purpose.FOLLOW_SENT: f"{names.sent} (following conversations)",
    }[Purpose(purpose)]


def channel_for(connection: MailboxConnection, purpose: str,
                channels: Mapping[str, PushChannel]) -> PushChannel | None:
    """The channel that carries ``purpose``'s notifications, of the connection's channels by
    purpose: its own, except that on Gmail following's come through the one watch (the mail
    channel), once that watches the Inbox or Sent label."""
    label = FOLLOWED_GMAIL_LABEL_OF.get(Purpose(purpose))
    if connection.provider == MailboxConnection.Provider.GOOGLE and label is not None:
        watch = channels.get(Purpose.MAIL)
        return watch if watch is not None and label in watch.watched.split(",") else None
    return channels.get(purpose)


def describe_channel(connection: MailboxConnection, purpose: str, channel: PushChannel | None,
                     *, now: dt.datetime) -> tuple[bool, str]:
    """A push channel's state in plain words for a company admin, and whether it is working.
    Push only speeds things up: without it the connection still syncs every hour."""
    if not wants_push(connection, purpose):
        if not connection.is_connected:
            return False, "Stopped until the mailbox is connected"
        return (True, "Not used: hourly sync") if watches(connection, purpose) else (True, "Off")
    if channel is None or not channel.channel_id or channel.expires_at is None:
        if channel is not None and channel.failed_at is not None:
            return False, f"Set-up failed {moment(channel.failed_at)}; tried again within {_hours(RETRY_AFTER)} hours"
        return True, "Set up at the next sync"
    if channel.expires_at <= now:
        return False, f"Expired {moment(channel.expires_at)}; renewed at the next sync"
    return True, f"Active until {moment(channel.expires_at)}"


def _hours(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 3600)
