from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone


class UserTimezoneMiddleware:
    """Show every date in the signed-in user's own time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        # For this request only: the zone is not left active in the thread for whatever it runs next.
        with timezone.override(user.zone if user is not None and user.is_authenticated else None):
            return self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy, with the providers' sign-in pages as form targets: saving the settings
    page (or Reconnect) redirects the form to Microsoft's or Google's sign-in, and browsers apply
    form-action to where a form's redirect leads. Read from settings per request, so the sign-in
    origins are always the configured ones (the sandbox's, locally)."""

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})
        update["form-action"] = [*update.get("form-action", []), *signin_origins()]
        parts.update = update
        return parts


def signin_origins() -> list[str]:
    origins = []
    for url in (settings.MICROSOFT_AUTHORITY, settings.GOOGLE_AUTH_URI):
        parts = urlsplit(str(url))
        if parts.scheme and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


class RequestSizeLimitMiddleware:
    """Refuse a request whose declared length is over ``MAX_REQUEST_BYTES`` before anything reads
    it (413): a 300 MB upload is turned away at its headers, not after it has been read in full."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponseBadRequest("Bad Content-Length.", content_type="text/plain")
        if declared > settings.MAX_REQUEST_BYTES:
            limit_mb = settings.MAIL_SEND_MAX_ATTACHMENT_BYTES // (1024 * 1024)
            # The server closes the connection itself: the unread body is never taken in.
            return render(request, "413.html", {"limit_mb": limit_mb}, status=413)
        return self.get_response(request)
