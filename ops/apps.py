from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from celery.signals import worker_init

        worker_init.connect(serve_worker_metrics, weak=False)


def serve_worker_metrics(**kwargs: Any) -> None:
    """A worker host's own metrics (its processes write to its own folder), on a port of its own,
    when WORKER_METRICS_PORT is set. Reached only on the hosts' private network: keep it unpublished."""
    if not settings.WORKER_METRICS_PORT:
        return
    from prometheus_client import start_http_server

    from .metrics import multiprocess_registry

    start_http_server(settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDRESS,
                      registry=multiprocess_registry())
