"""What django-axes counts sign-in failures by: the email address tried, and the client's address."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def attempted_email(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The email address as typed, folded, so ``Bob@X`` and ``bob@x `` count as one account."""
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return str(raw).strip().lower()


def client_address(request: HttpRequest) -> str:
    """The client's address. Behind the TLS proxy (``BEHIND_TLS_PROXY``) that is the last entry of
    X-Forwarded-For, the one the proxy itself appended; entries before it are the client's to
    invent. Otherwise the socket's peer."""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return str(request.META.get("REMOTE_ADDR", ""))


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """The page a locked-out sign-in gets (429), on /login/ and /admin/login/ alike."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html",
                  {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}, status=429)
