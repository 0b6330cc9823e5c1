from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .models import WorkerHeartbeat


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and uptime checks: the database answers; when a worker last beat."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    latest = WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    return JsonResponse({"database": "ok", "last_worker_heartbeat": latest.isoformat() if latest else None})
