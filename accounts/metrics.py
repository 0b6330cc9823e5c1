"""The product's own Prometheus metrics (prometheus_client), recorded where the work is recorded:
runs in the one run recorder (``accounts.runs``), grants in ``accounts.grants``, sends in the send
path (``mailsync.sending``). Request metrics come from django-prometheus; queue depth and
connections by state are read when scraped (``ops.metrics``).

Web and worker processes are separate, so prometheus_client runs in multiprocess mode: each process
writes its samples to files under ``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them up.
Reference: https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import time

from django.core.cache import cache
from prometheus_client import Counter, Histogram

RUNS = Counter("aspire_sync_runs", "Capture and calendar runs finished, by outcome.",
               ["kind", "provider", "outcome"])
RUN_SECONDS = Histogram("aspire_sync_run_duration_seconds", "How long a capture or calendar run took.",
                        ["kind", "provider"], buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900))
PUSH_TO_ACTIVITY_SECONDS = Histogram(
    "aspire_push_to_activity_seconds",
    "From a provider's push notification arriving to the run it caused having written its Activities.",
    ["kind", "provider"], buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 900))
THROTTLES = Counter("aspire_provider_throttled", "Answers in which a provider asked us to slow down.",
                    ["provider", "work"])
RETRY_AFTER_SECONDS = Histogram("aspire_provider_retry_after_seconds",
                                "The wait a throttling provider asked for (Retry-After), when it said.",
                                ["provider"], buckets=(1, 2, 5, 10, 30, 60, 120, 300, 900, 3600))
TOKENS_REFRESHED = Counter("aspire_tokens_refreshed", "Access tokens renewed with a refresh token.", ["provider"])
TOKENS_REFUSED = Counter("aspire_tokens_refused",
                         "Refresh tokens the provider refused (the connection then needs sign-in).", ["provider"])
SENDS = Counter("aspire_mail_sends", "Messages sent from Aspire, by how their sending ended.",
                ["provider", "outcome"])

# The earliest push not yet answered by a run, per connection and kind (in the shared cache).
PUSH_PENDING_SECONDS = 3600


def _push_key(connection_id: object, kind: str) -> str:
    return f"metrics:push:{kind}:{connection_id}"


def push_received(*, connection_id: object, kinds: tuple[str, ...]) -> None:
    """A push notification made the connection due: the run that follows measures from now."""
    for kind in kinds:
        cache.add(_push_key(connection_id, kind), time.time(), timeout=PUSH_PENDING_SECONDS)


def run_finished(*, kind: str, provider: str, outcome: str, seconds: float, trigger: str, connection_id: object,
                 wrote: bool) -> None:
    RUNS.labels(kind=kind, provider=provider, outcome=outcome).inc()
    RUN_SECONDS.labels(kind=kind, provider=provider).observe(seconds)
    if trigger == "push" and outcome in ("succeeded", "partial"):
        received = cache.get(_push_key(connection_id, kind))
        cache.delete(_push_key(connection_id, kind))
        if received is not None and wrote:
            PUSH_TO_ACTIVITY_SECONDS.labels(kind=kind, provider=provider).observe(max(time.time() - received, 0.0))


def throttled(*, provider: str, work: str, retry_after: float | None) -> None:
    THROTTLES.labels(provider=provider, work=work).inc()
    if retry_after is not None:
        RETRY_AFTER_SECONDS.labels(provider=provider).observe(retry_after)
