"""The ids every log line of a piece of work carries (company, connection, run), kept in a
context variable: set where a run or a drain of the send queue starts, added to each record by
``aspire_sync.log_filters.WorkContext``, and written as fields of the JSON log line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_ids: ContextVar[dict[str, str]] = ContextVar("aspire_log_ids", default={})  # noqa: B039 (never mutated)


@contextlib.contextmanager
def log_ids(**ids: object) -> Iterator[None]:
    """Within this block, every log record carries these ids (those given as None are left out)."""
    token = _ids.set({**_ids.get(), **{name: str(value) for name, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def current_log_ids() -> dict[str, str]:
    return _ids.get()
