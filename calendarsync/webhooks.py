"""Endpoints the providers call when a calendar changes. No session and no CSRF token: each
request is checked against the watch's own secret (Graph's clientState, Google's channel token)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .push import handle_google_notification, handle_graph_notifications

MAX_BODY = 1024 * 1024


@csrf_exempt
@require_POST
def microsoft_notifications(request: HttpRequest) -> HttpResponse:
    # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
    token = request.GET.get("validationToken")
    if token is not None:
        # The subscription handshake: echo the token, as plain text, within 10 seconds.
        return HttpResponse(token[:1024], content_type="text/plain")
    if len(request.body) > MAX_BODY:
        return HttpResponseBadRequest("too large")
    try:
        payload = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("not JSON")
    handle_graph_notifications(payload if isinstance(payload, dict) else {})
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def google_notifications(request: HttpRequest) -> HttpResponse:
    # Reference: https://developers.google.com/workspace/calendar/api/guides/push
    handle_google_notification(request.headers)
    # Google retries anything but a success; an unknown channel is not worth retrying.
    return HttpResponse(status=200)
