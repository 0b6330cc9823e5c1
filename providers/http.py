"""HTTP answers as provider errors, for every provider: one status table, one Retry-After parser,
and one rule for how long to wait before trying again.

The adapters turn their own error bodies into a status and a few facts (Graph's error code, Google's
error reasons) and handle what only they know first (a rate-limit 403 at Google, a sync-state code
at Graph); everything else comes through ``error_for_status``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import re
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from .errors import (
    AccessTokenRejected,
    Conflict,
    NotFound,
    ProviderError,
    SendOutcomeUnknown,
    SyncStateExpired,
    Throttled,
    TransientError,
)

# A provider asking for more than this is taken at this: every connection syncs at least hourly
# anyway, and a wait beyond it would only stall the hourly run.
MAX_RETRY_AFTER = 3600.0
# Without a Retry-After: about 15 s, 30 s, 1 min... up to 15 min, jittered so that mailboxes that
# failed together don't come back together.
BACKOFF_BASE = 15.0
BACKOFF_CAP = 15 * 60.0
_DELAY_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")

S = TypeVar("S")


class PerThread(Generic[S]):
    """One client object (a ``requests.Session``) per thread, made on first use in that thread.
    Workers run syncs in a thread pool, and requests does not promise that a Session is safe to
    share between threads; its maintainers advise one per thread. Each thread's keeps its own
    connection pool, so keep-alive still works within a run."""
    # Reference: https://github.com/psf/requests/issues/2766

    def __init__(self, make: Callable[[], S]) -> None:
        self._make = make
        self._local = threading.local()
        self._made: list[S] = []
        self._lock = threading.Lock()

    def get(self) -> S:
        value: S | None = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._make()
            with self._lock:
                self._made.append(value)
        return value

    def all(self) -> list[S]:
        with self._lock:
            return list(self._made)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when there is none or it is not one.

    RFC 9110 (section 10.2.3) allows delay-seconds or an HTTP-date, and an HTTP-date comes in three
    forms: IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), RFC 850 (``Sunday, 06-Nov-94 08:49:37 GMT``)
    and asctime (``Sun Nov  6 08:49:37 1994``); all are in UTC. A date in the past means "now" (0); a
    wait over an hour is taken as an hour."""
    # Reference: https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
    text = (value or "").strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # asctime has no zone, and "-0000" parses as naive: HTTP dates are always UTC.
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def retry_after_of(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = headers.get("retry-after")
    return parse_retry_after(value)


def error_for_status(status: int, headers: Mapping[str, str] | None, detail: str, *,
                     may_repeat: bool = True, documented: bool = True) -> ProviderError:
    """The provider error for an HTTP error status with no more specific meaning.

    ``may_repeat=False`` is for a request that must not be repeated unseen (sending mail): then any
    answer that does not prove the provider refused it is ambiguous. A 5xx may come from a gateway
    in front of a backend that took the request, so it is ``SendOutcomeUnknown``; a 429, a 401 and
    the other 4xx come before the request is acted on, so they are safe to act on as they are.

    ``documented=False`` says the body was not in the provider's documented error shape (a proxy's
    page, a half-written answer): a 4xx like that proves nothing about our request, so it is
    transient rather than a refusal.
    """
    retry_after = retry_after_of(headers)
    if status >= 500 and not may_repeat:
        return SendOutcomeUnknown(detail, retry_after=retry_after)
    if status == 401:
        return AccessTokenRejected(detail, retry_after=retry_after)
    if status == 429 or (status == 503 and retry_after is not None):
        # Reference: https://learn.microsoft.com/en-us/graph/throttling
        # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
        return Throttled(detail, retry_after=retry_after)
    if status >= 500:
        return TransientError(detail, retry_after=retry_after)
    if not documented:
        return TransientError(detail, retry_after=retry_after)
    if status == 404:
        return NotFound(detail)
    if status in (409, 412):
        return Conflict(detail)
    if status == 410:
        return SyncStateExpired(detail)
    return ProviderError(detail)


def retry_delay(error: ProviderError | None, attempt: int) -> float:
    """Seconds to wait before trying again after ``attempt`` failures (0 for the first): what the
    provider asked for when it said, else exponential backoff with jitter."""
    if error is not None and error.retry_after is not None:
        return error.retry_after
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(max(attempt, 0), 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not secrets)
