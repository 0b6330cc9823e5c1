"""Endpoints the providers call when a calendar changes. No session and no CSRF token: each
request is checked against the watch's own secret (Graph's clientState, Google's channel token)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.hooks import graph_webhook

from .push import handle_google_notification, handle_graph_notifications

microsoft_notifications = graph_webhook(handle_graph_notifications)


@csrf_exempt
@require_POST
def google_notifications(request: HttpRequest) -> HttpResponse:
    # Reference: https://developers.google.com/workspace/calendar/api/guides/push
    handle_google_notification(request.headers)
    # Google retries anything but a success; an unknown channel is not worth retrying.
    return HttpResponse(status=200)
