"""Push for calendars: a Graph subscription to the user's events or a Google Calendar channel per
connection, set up and renewed by the sync run a day before it expires, and the webhooks' handling.

A notification only makes the connection due (``request_sync``): the sync itself is the ordinary
run, so a lost notification costs latency, never data (the hourly run catches up). Push is off
while ``PUSH_BASE_URL`` is empty.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.mailbox import request_sync
from accounts.models import MailboxConnection
from providers.base import Grant
from providers.calendar import CalendarProvider, CalendarWatch
from providers.errors import ProviderError

from .models import CalendarSyncState

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=1)
# After a failed set-up, wait before trying again, so idle runs stay at one calendar request.
RETRY_AFTER = dt.timedelta(hours=6)


def notification_url(provider: str) -> str:
    name = "calendarsync:hook_microsoft" if provider == MailboxConnection.Provider.MICROSOFT else \
        "calendarsync:hook_google"
    return str(settings.PUSH_BASE_URL) + reverse(name)


def needs_watch(state: CalendarSyncState, now: dt.datetime) -> bool:
    if not settings.PUSH_BASE_URL:
        return False
    if state.watch_tried_at is not None and now - state.watch_tried_at < RETRY_AFTER and (
            not state.watch_id or state.watch_expires_at is None or state.watch_expires_at <= now):
        return False
    return not state.watch_id or state.watch_expires_at is None or state.watch_expires_at - now < RENEW_BEFORE


def ensure_watch(connection: MailboxConnection, calendar: CalendarProvider, grant: Grant) -> bool:
    """Set up or renew the connection's watch when it is missing or expires within a day. Returns
    whether a provider call was made. Failures are logged, not raised: push only speeds things up."""
    state = CalendarSyncState.objects.get(connection=connection)
    now = timezone.now()
    if not needs_watch(state, now):
        return False
    secret = state.watch_secret or secrets.token_urlsafe(24)
    current = CalendarWatch(id=state.watch_id, resource_id=state.watch_resource_id,
                            expires_at=state.watch_expires_at or now) if state.watch_id else None
    try:
        watch = calendar.watch(grant, notification_url=notification_url(connection.provider), client_state=secret,
                               renew=current)
    except ProviderError as exc:
        log.warning("calendar push for %s not set up: %s", connection.pk, exc.__class__.__name__)
        # A subscription the provider no longer knows is made anew next time.
        CalendarSyncState.objects.filter(pk=state.pk).update(watch_id="", watch_resource_id="", watch_tried_at=now)
        return True
    CalendarSyncState.objects.filter(pk=state.pk).update(
        watch_id=watch.id, watch_resource_id=watch.resource_id, watch_expires_at=watch.expires_at,
        watch_secret=secret, watch_tried_at=now,
    )
    return True


def handle_graph_notifications(payload: Mapping[str, Any]) -> int:
    """Graph change and lifecycle notifications for calendars. Each is checked against its
    subscription's own secret (clientState); unknown or forged ones are ignored."""
    accepted = 0
    for item in payload.get("value", []):
        if not isinstance(item, Mapping):
            continue
        state = _state_for(str(item.get("subscriptionId", "")), str(item.get("clientState", "")))
        if state is None:
            continue
        accepted += 1
        if item.get("lifecycleEvent") in ("subscriptionRemoved", "reauthorizationRequired"):
            CalendarSyncState.objects.filter(pk=state.pk).update(watch_expires_at=None)
        request_sync(connection=state.connection, trigger="push")
    return accepted


def handle_google_notification(headers: Mapping[str, str]) -> bool:
    """A Google Calendar channel notification (all in its headers). The first one, ``sync``, only
    confirms the channel; ``exists`` means the calendar changed."""
    # Reference: https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications
    state = _state_for(headers.get("X-Goog-Channel-ID", ""), headers.get("X-Goog-Channel-Token", ""))
    if state is None or headers.get("X-Goog-Resource-ID", "") != state.watch_resource_id:
        return False
    if headers.get("X-Goog-Resource-State") == "exists":
        request_sync(connection=state.connection, trigger="push")
    return True


def _state_for(watch_id: str, secret: str) -> CalendarSyncState | None:
    if not watch_id or not secret:
        return None
    state = CalendarSyncState.objects.select_related("connection").filter(watch_id=watch_id).first()
    if state is None or not state.watch_secret or not constant_time_compare(secret, state.watch_secret):
        return None
    if not state.connection.is_connected:
        return None
    return state
