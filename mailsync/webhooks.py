"""Endpoints the providers call. No session and no CSRF token: each request is checked against a
secret of its own (Graph's clientState per subscription, a token in the Pub/Sub push URL)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .push import PushRefused, handle_graph_notifications, handle_pubsub_push

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
def google_pubsub(request: HttpRequest) -> HttpResponse:
    # Reference: https://cloud.google.com/pubsub/docs/push
    if len(request.body) > MAX_BODY:
        return HttpResponseBadRequest("too large")
    try:
        payload = json.loads(request.body)
        handle_pubsub_push(payload if isinstance(payload, dict) else {}, token=request.GET.get("token", ""))
    except PushRefused:
        return HttpResponseForbidden()
    except ValueError:
        return HttpResponseBadRequest("not JSON")
    # Pub/Sub retries anything but a success; an unknown mailbox is not worth retrying.
    return HttpResponse(status=204)
