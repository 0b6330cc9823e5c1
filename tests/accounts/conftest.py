"""Fixtures of the accounts tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings


@pytest.fixture
def buckets() -> Iterator[Any]:
    """Redis (as configured) with no quota spent."""
    assert settings.REDIS_URL, "the quota tests need REDIS_URL"
    client = redis.Redis.from_url(settings.REDIS_URL)

    def clear() -> None:
        for key in client.scan_iter("quota:*"):
            client.delete(key)

    clear()
    yield client
    clear()
