"""Graph subscriptions (change notifications), one way for mail folders and calendars.

Every subscription is made with a ``lifecycleNotificationUrl`` when one is given, so Graph tells us
before it drops a subscription (``subscriptionRemoved``), when it needs it reauthorized
(``reauthorizationRequired``) and when it could not deliver (``missed``). That property cannot be
added to an existing subscription: renewing one made without it replaces it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from ..base import PushChannel
from ..errors import NotFound, ProviderError
from .graph import GraphClient, segment

log = logging.getLogger(__name__)

# Graph caps subscriptions on messages and events at 4,230 minutes; ask for a little less.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime
SUBSCRIPTION_MINUTES = 4200


def watch(graph: GraphClient, *, resource: str, change_type: str, notification_url: str, lifecycle_url: str,
          client_state: str, watched: str = "", renew: PushChannel | None = None) -> PushChannel:
    """A subscription to ``resource``, or the renewal of ``renew``. Graph first calls each URL with a
    validation token, which the product's webhook echoes. A renewal is a PATCH of the expiry (which
    also reauthorizes the subscription) while the current one watches the same thing and already
    has lifecycle notifications; otherwise a new subscription replaces it."""
    stamp = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=SUBSCRIPTION_MINUTES)).strftime(
        "%Y-%m-%dT%H:%M:%S.0000000Z")
    if renew is not None and renew.watched == watched and renew.lifecycle == bool(lifecycle_url):
        # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-update
        # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events#responding-to-reauthorizationrequired-notifications
        answer = graph._json(graph.request("PATCH", f"/subscriptions/{segment(renew.id)}",
                                           json={"expirationDateTime": stamp}))
        return _channel(answer, watched)
    # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
    # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
    body = {"changeType": change_type, "notificationUrl": notification_url, "resource": resource,
            "expirationDateTime": stamp, "clientState": client_state}
    if lifecycle_url:
        body["lifecycleNotificationUrl"] = lifecycle_url
    channel = _channel(graph.post_json("/subscriptions", body), watched)
    if renew is not None:
        # The replaced subscription would otherwise notify until it expires; its notifications are
        # ignored meanwhile (unknown id), so failing to delete it is not worth failing for.
        try:
            stop(graph, renew.id)
        except ProviderError as exc:
            log.info("replaced subscription not deleted: %s", exc.__class__.__name__)
    return channel


def stop(graph: GraphClient, subscription_id: str) -> None:
    # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-delete
    with contextlib.suppress(NotFound):  # expired or deleted already
        graph.request("DELETE", f"/subscriptions/{segment(subscription_id)}").close()


def _channel(answer: dict[str, object], watched: str) -> PushChannel:
    expires = str(answer["expirationDateTime"]).split(".")[0].replace("Z", "")
    return PushChannel(id=str(answer["id"]), expires_at=dt.datetime.fromisoformat(expires).replace(tzinfo=dt.UTC),
                       watched=watched, lifecycle=bool(answer.get("lifecycleNotificationUrl")))
