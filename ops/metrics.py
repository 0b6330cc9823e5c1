"""The metrics endpoint: everything every process recorded (prometheus_client's multiprocess
files, ``accounts.metrics`` and django-prometheus's request metrics), and what is read when scraped:
each queue's depth at the broker and connections by state.

Protected by a bearer token (``METRICS_TOKEN``); without one the endpoint does not exist. Worker
hosts, whose processes write to their own folder, serve theirs on ``WORKER_METRICS_PORT``
(``ops.apps``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from accounts.models import MailboxConnection
from aspire_sync.celery import app, known_queues

logger = logging.getLogger(__name__)


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue (for Redis, the LLEN of the queue's lists)."""
    depths: dict[str, int] = {}
    with app.connection_for_read() as broker:
        channel: Any = broker.default_channel
        for queue in known_queues():
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except Exception:  # a queue no task was ever sent to, on a broker that does not make it
                depths[queue] = 0
    return depths


def connections_by_state() -> dict[str, int]:
    """Connected, paused (connected, but the last run stopped on an error and will resume), needs
    sign-in, and disconnected."""
    State = MailboxConnection.State
    counts = MailboxConnection.objects.aggregate(
        connected=Count("pk", filter=Q(state=State.CONNECTED, last_error="")),
        paused=Count("pk", filter=Q(state=State.CONNECTED) & ~Q(last_error="")),
        needs_signin=Count("pk", filter=Q(state=State.NEEDS_SIGNIN)),
        disconnected=Count("pk", filter=Q(state=State.DISCONNECTED)),
    )
    return {state: int(count) for state, count in counts.items()}


class ScrapeTimeCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("aspire_queue_depth", "Tasks waiting in each broker queue.", labels=["queue"])
        try:
            for queue, count in queue_depths().items():
                depth.add_metric([queue], count)
        except Exception:  # the broker is down: /healthz says so; the other metrics still answer
            logger.warning("Queue depth not read: the broker did not answer", exc_info=True)
        yield depth
        connections = GaugeMetricFamily("aspire_connections", "Mailbox connections by state.", labels=["state"])
        for state, count in connections_by_state().items():
            connections.add_metric([state], count)
        yield connections


def multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = str(settings.METRICS_TOKEN)
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    supplied = request.headers.get("Authorization", "")
    if supplied[:7].lower() != "bearer " or not constant_time_compare(supplied[7:].strip(), token):
        return HttpResponse("A bearer token is required.", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = multiprocess_registry()
    registry.register(ScrapeTimeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
