"""What every Microsoft Graph webhook does before its own work: the subscription handshake, a
size limit, JSON. No session and no CSRF token: each notification is checked by its handler
against the subscription's own secret (clientState)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

MAX_BODY = 1024 * 1024


def graph_webhook(handle: Callable[[dict[str, Any]], Any]) -> Callable[[HttpRequest], HttpResponse]:
    """A view for Graph change notifications that passes each valid payload to ``handle``."""

    @csrf_exempt
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
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
        handle(payload if isinstance(payload, dict) else {})
        return HttpResponse(status=202)

    return view
