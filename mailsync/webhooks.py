"""Endpoints the providers call. No session and no CSRF token: each request is checked against a
secret of its own (Graph's clientState per subscription, a token in the Pub/Sub push URL)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.hooks import MAX_BODY, graph_webhook

from .push import PushRefused, handle_graph_notifications, handle_pubsub_push

microsoft_notifications = graph_webhook(handle_graph_notifications)


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
