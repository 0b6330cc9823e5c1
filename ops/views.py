from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .heartbeats import health


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and uptime checks: the database, the broker, beat and a worker per queue,
    each ok or down (and why); 503 when anything is down."""
    report = health()
    return JsonResponse(report.as_json(), status=503 if report.down else 200)
