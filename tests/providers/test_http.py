"""The one status table and Retry-After parser both providers use (``providers.http``)."""

from __future__ import annotations

import datetime as dt

import pytest

from providers.errors import (
    AccessTokenRejected,
    Conflict,
    NotFound,
    ProviderError,
    SendOutcomeUnknown,
    SyncStateExpired,
    Throttled,
    TransientError,
)
from providers.http import BACKOFF_CAP, MAX_RETRY_AFTER, error_for_status, parse_retry_after, retry_delay

NOW = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0),
    ("7", 7.0),
    (" 120 ", 120.0),
    ("1.5", 1.5),  # not RFC 9110's delay-seconds, but harmless to honour
    # The three HTTP-date forms of RFC 9110, all UTC.
    ("Tue, 01 Dec 2026 10:00:30 GMT", 30.0),  # IMF-fixdate
    ("Tuesday, 01-Dec-26 10:01:00 GMT", 60.0),  # obsolete RFC 850
    ("Tue Dec  1 10:02:00 2026", 120.0),  # asctime: no zone, UTC by definition
    ("Tue, 01 Dec 2026 10:00:45 -0000", 45.0),  # "-0000" parses without a zone: still UTC
    ("Tue, 01 Dec 2026 11:00:05 +0100", 5.0),
    ("Tue, 01 Dec 2026 09:00:00 GMT", 0.0),  # in the past: now
    ("999999999999", MAX_RETRY_AFTER),  # absurdly long: capped
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
])
def test_retry_after_is_read_in_every_form(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "-0.5", "inf", "nan", "1e3", "0x10", "5 seconds",
                                   "Tue, 32 Dec 2026 10:00:00 GMT", "\x00", "\uff11\uff12"])
def test_garbage_or_negative_retry_after_is_no_answer(value: str | None) -> None:
    # Fullwidth digits are digits to Python, not to HTTP.
    assert parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize(("status", "expected"), [
    (400, ProviderError), (403, ProviderError), (404, NotFound), (409, Conflict), (410, SyncStateExpired),
    (412, Conflict), (413, ProviderError), (401, AccessTokenRejected), (429, Throttled),
    (500, TransientError), (502, TransientError), (503, TransientError), (504, TransientError),
])
def test_one_status_table(status: int, expected: type[ProviderError]) -> None:
    error = error_for_status(status, {}, f"HTTP {status}")
    assert type(error) is expected
    # The one axis: only refusals are permanent; waiting can help with everything else.
    assert error.permanent == (expected in (ProviderError, NotFound, Conflict))


def test_a_503_with_retry_after_is_throttling_and_the_wait_is_carried() -> None:
    error = error_for_status(503, {"Retry-After": "12"}, "busy")
    assert isinstance(error, Throttled) and error.retry_after == 12
    assert error_for_status(429, {"retry-after": "3"}, "slow down").retry_after == 3
    assert error_for_status(500, {}, "oops").retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_on_a_send_is_ambiguous(status: int) -> None:
    error = error_for_status(status, {"Retry-After": "9"}, "gateway", may_repeat=False)
    assert isinstance(error, SendOutcomeUnknown) and error.retry_after == 9 and not error.permanent


@pytest.mark.parametrize(("status", "expected"), [(429, Throttled), (401, AccessTokenRejected), (400, ProviderError)])
def test_answers_before_a_send_was_acted_on_are_taken_as_they_are(status: int, expected: type[ProviderError]) -> None:
    assert type(error_for_status(status, {}, "refused", may_repeat=False)) is expected


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_an_answer_not_in_the_providers_error_shape_proves_nothing(status: int) -> None:
    error = error_for_status(status, {}, "a proxy's page", documented=False)
    assert type(error) is TransientError and not error.permanent


def test_backoff_grows_is_jittered_and_is_capped() -> None:
    first = [retry_delay(None, 0) for _ in range(200)]
    assert all(7.5 <= delay <= 15 for delay in first) and len(set(first)) > 100
    assert all(60 <= retry_delay(None, 3) <= 120 for _ in range(50))
    assert all(delay <= BACKOFF_CAP for delay in (retry_delay(None, attempt) for attempt in range(10_000)))
    assert retry_delay(Throttled("slow", retry_after=42), 5) == 42
