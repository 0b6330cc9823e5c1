"""The Celery application, and the one convention every task follows.

Configuration comes from Django settings prefixed ``CELERY_``.

``connection_task`` is how a task is declared (Sentry's ``instrumented_task`` with ``retry(on=,
exclude=)`` is the model). Tasks are thin: they take ids and call a service, and the wrapper reads
the outcome the same way for every one of them:

- the object is gone (``ObjectDoesNotExist``) or another worker holds the work (``Busy``): return;
- a provider error that is ``permanent``: it has been recorded where the user sees it; return;
- any other provider error: retry after what the provider asked for (``retry_after``), or after an
  exponential backoff when it did not say (``providers.http.retry_delay``);
- a database error (a lost connection, a failover), or one of the task's own ``retry_on``
  (a mail server that cannot be reached): retry after the backoff;
- anything else is our bug: raised, so it is logged with its traceback.

Retries are bounded. Work that runs out of retries is not lost: the dispatcher finds connections and
mail due again from the database (``aspire_sync.scheduling``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from celery import Celery, Task, signals
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError

from providers.errors import ProviderError
from providers.http import BACKOFF_CAP, retry_delay

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_sync.settings")

app = Celery("aspire_sync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

MAX_RETRIES = 8


@signals.setup_logging.connect
def keep_django_logging(**kwargs: Any) -> None:
    """Workers and beat log through settings.LOGGING (JSON lines in production, with the work's ids,
    secrets redacted), as configured by Django, at LOG_LEVEL: a receiver here tells Celery to leave
    logging alone (its ``-l`` option then has no effect)."""


class Busy(Exception):
    """Another worker holds this work (its lease): there is nothing for this task to do."""


def connection_task(*, name: str, queue: str, max_retries: int = MAX_RETRIES,
                    retry_on: tuple[type[Exception], ...] = (),
                    **options: Any) -> Callable[[Callable[..., str]], Task]:
    """Declare a task on the house's convention (above). The function gets the task's arguments and
    ``owner``, the id under which it claims leases; it returns a short description of what it did.
    ``retry_on``: failures of the task's own that waiting can help, retried like a database error."""
    retried: tuple[type[Exception], ...] = (DatabaseError, *retry_on)

    def declare(function: Callable[..., str]) -> Task:
        @app.task(name=name, queue=queue, bind=True, max_retries=max_retries, acks_late=True, **options)
        @functools.wraps(function)
        def task(self: Task, *args: Any, **kwargs: Any) -> str:
            try:
                return function(*args, owner=self.request.id or "inline", **kwargs)
            except ObjectDoesNotExist:
                return "gone"
            except Busy:
                return "busy"
            except ProviderError as exc:
                if exc.permanent:
                    return f"failed: {type(exc).__name__}"
                countdown = min(retry_delay(exc, self.request.retries), BACKOFF_CAP)
                raise self.retry(exc=exc, countdown=countdown) from exc
            except retried as exc:
                raise self.retry(exc=exc, countdown=retry_delay(None, self.request.retries)) from exc

        return task

    return declare


def known_queues() -> list[str]:
    """Every queue a task of ours is sent to: the queue each task names, any queue a route names,
    and the default. Workers, heartbeats, /healthz and the queue-depth metric all read this list."""
    queues = {app.conf.task_default_queue}
    queues.update(getattr(task, "queue", None) or app.conf.task_default_queue
                  for name, task in app.tasks.items() if not name.startswith("celery."))
    routes = app.conf.task_routes or {}
    if isinstance(routes, dict):
        queues.update(route["queue"] for route in routes.values() if isinstance(route, dict) and "queue" in route)
    return sorted(queues)
