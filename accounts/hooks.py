"""The endpoints providers call when a mail folder or a calendar changes. No session and no CSRF
token: each request is checked by ``accounts.push`` (Graph's clientState per subscription, Google's
channel token, Pub/Sub's signed token).

Whatever the body, an answer comes at once and is never a 500: a body declared larger than any
notification is refused before it is read (413), a malformed one is a 400, and a well-formed one is
acknowledged (202 / 200 / 204) whether or not it was ours, so a forger learns nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .push import (
    MAX_BODY,
    PushMalformed,
    PushRefused,
    PushTooLarge,
    handle_gmail_push,
    handle_google_calendar,
    handle_graph_notifications,
    parse_graph_notifications,
)


def _too_large(request: HttpRequest) -> bool:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return declared > MAX_BODY


def push_endpoint(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """What every endpoint here does first: POST only, no CSRF token, and a body declared larger
    than any notification refused before it is read."""

    @functools.wraps(view)
    def endpoint(request: HttpRequest) -> HttpResponse:
        if _too_large(request):
            return HttpResponse("Too large.", status=413, content_type="text/plain")
        return view(request)

    return csrf_exempt(require_POST(endpoint))


@push_endpoint
def graph_notifications(request: HttpRequest) -> HttpResponse:
    """Graph change notifications and lifecycle notifications, for mail and calendar."""
    # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
    token = request.GET.get("validationToken")
    if token is not None:
        # The subscription handshake: echo the token, as plain text, within 10 seconds.
        return HttpResponse(token[:1024], content_type="text/plain")
    try:
        items = parse_graph_notifications(request.body)
    except PushTooLarge as exc:
        return HttpResponse(str(exc), status=413, content_type="text/plain")
    except PushMalformed as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    handle_graph_notifications(items)
    return HttpResponse(status=202)


@push_endpoint
def google_calendar_notifications(request: HttpRequest) -> HttpResponse:
    # Reference: https://developers.google.com/workspace/calendar/api/guides/push
    handle_google_calendar(request.headers)
    # Google retries anything but a success; an unknown channel is not worth retrying.
    return HttpResponse(status=200)


@push_endpoint
def gmail_pubsub(request: HttpRequest) -> HttpResponse:
    # Reference: https://cloud.google.com/pubsub/docs/push
    try:
        handle_gmail_push(authorization=request.headers.get("Authorization", ""), body=request.body)
    except PushRefused:
        return HttpResponseForbidden()
    except PushMalformed as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    # Pub/Sub retries anything but a success; an unknown mailbox or a replay is not worth retrying.
    return HttpResponse(status=204)
