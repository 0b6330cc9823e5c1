"""The providers' quotas, shared by everything that touches a mailbox and by every worker on every
host: the buckets live in Redis (``REDIS_URL``).

- **One budget per mailbox** for capture, calendar and sending together: Graph allows an app
  10,000 requests per mailbox in 10 minutes; Gmail a number of quota units per user per minute.
- **One budget per application** across all tenants: Graph's global limit per app, Gmail's
  per-project quota. Within it, companies get **fair shares**: while the application is past half
  its budget, a company that has spent its share waits: the budget over the companies active in
  the window plus one, so there is always room for a company that has not started yet. One
  company's month-end send cannot starve another company's capture.

Work is admitted before it starts (``admit``, one request's worth) and charged for what it
really did when it ends (``charge``): Graph in requests, Gmail in the units each method is
documented to cost (``providers.google.quota.COSTS``, metered as the calls are made); an
over-spend makes the next admission wait. A refusal is
``providers.errors.Throttled`` with the seconds until the window turns, so it takes the path every
provider throttle takes: the run is retried after that wait, the send queue pauses; nothing is lost.

Budgets are fixed windows held a little under the documented figures (``QUOTA_HEADROOM``), for
the user's other clients and the clock skew between hosts. Without ``REDIS_URL`` (a single-process
demo), or while Redis cannot be reached, nothing is shared, so nothing is enforced here; the
providers' own limits still answer 429.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from providers.errors import Throttled
from providers.google import quota as gmail_units

from .models import MailboxConnection

# A Graph request is one request of the mailbox's budget. A Gmail call costs the units its method
# is documented to cost, from the one table (providers.google.quota.COSTS): work is admitted with
# its first call's worth (a run's list of the Aspire label, a send) and charged, when it ends, what
# the Gmail calls it made cost (counted per thread as they are made). Google Calendar has quotas of
# its own, in requests, not Gmail units: a calendar run is charged a list's worth per request.
# Reference: https://developers.google.com/workspace/gmail/api/reference/quota
UNITS_PER_REQUEST = {"microsoft": 1, "google": gmail_units.COSTS["messages.list"]}
SEND_UNITS = {"microsoft": 1, "google": gmail_units.COSTS["messages.send"]}

log = logging.getLogger(__name__)

WAITING = "Aspire is pacing this mailbox within its provider's limits; it will resume shortly."

# Checks and spends the three buckets at once, so two workers can never both take the last unit.
# KEYS: mailbox, application, company, the set of companies active in the application's window.
# ARGV: units, mailbox limit, mailbox window ms, app limit, app window ms, company id, fair from.
SPEND = """
local units = tonumber(ARGV[1])
local mailbox = tonumber(redis.call('GET', KEYS[1]) or '0')
if mailbox + units > tonumber(ARGV[2]) and mailbox > 0 then
  return {1, redis.call('PTTL', KEYS[1])}
end
local app = tonumber(redis.call('GET', KEYS[2]) or '0')
local app_limit = tonumber(ARGV[4])
if app + units > app_limit and app > 0 then
  return {2, redis.call('PTTL', KEYS[2])}
end
if redis.call('SADD', KEYS[4], ARGV[6]) == 1 then
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
local company = tonumber(redis.call('GET', KEYS[3]) or '0')
local share = app_limit / (redis.call('SCARD', KEYS[4]) + 1)
if app + units > app_limit * tonumber(ARGV[7]) and company + units > share and company > 0 then
  return {3, redis.call('PTTL', KEYS[2])}
end
for i, ttl in ipairs({ARGV[3], ARGV[5], ARGV[5]}) do
  if redis.call('INCRBY', KEYS[i], units) == units then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {0, 0}
"""
REFUSED_BY = {1: "mailbox", 2: "application", 3: "company share"}


@dataclass(frozen=True)
class Budget:
    units: int
    window_seconds: int


def budgets(provider: str) -> tuple[Budget, Budget]:
    """The mailbox's and the application's budget for a provider, under the headroom."""
    figures = settings.PROVIDER_QUOTAS[provider]
    headroom = settings.QUOTA_HEADROOM
    mailbox_units, mailbox_window = figures["mailbox"]
    app_units, app_window = figures["application"]
    return (Budget(max(1, int(mailbox_units * headroom)), mailbox_window),
            Budget(max(1, int(app_units * headroom)), app_window))


@functools.cache
def _client(url: str) -> Any:
    # redis-py clients are safe to share between threads: each command takes a pooled connection.
    client = redis.Redis.from_url(url)
    return client, client.register_script(SPEND)


def _keys(connection: MailboxConnection, now: float) -> tuple[list[str], Budget, Budget]:
    mailbox, application = budgets(connection.provider)
    mailbox_window = int(now // mailbox.window_seconds)
    app_window = int(now // application.window_seconds)
    prefix = f"quota:{connection.provider}"
    return ([f"{prefix}:mailbox:{connection.mailbox_address.lower()}:{mailbox_window}",
             f"{prefix}:app:{app_window}",
             f"{prefix}:company:{connection.company_id}:{app_window}",
             f"{prefix}:companies:{app_window}"], mailbox, application)


def _spend(connection: MailboxConnection, units: int, *, check: bool) -> None:
    if not settings.REDIS_URL or units <= 0:
        return
    try:
        _spend_in_redis(connection, units, check=check)
    except redis.RedisError as exc:
        # Budgets are a courtesy to the providers, whose own limits still answer 429: without
        # Redis, work goes on unmetered rather than stop.
        log.warning("provider budgets unavailable, work goes on unmetered: %s", type(exc).__name__)


def _spend_in_redis(connection: MailboxConnection, units: int, *, check: bool) -> None:
    client, spend = _client(settings.REDIS_URL)
    keys, mailbox, application = _keys(connection, time.time())
    if not check:
        # What a run or send really cost, past what it was admitted with: counted as it is.
        pipe = client.pipeline(transaction=False)
        for key, window in zip(keys[:3], (mailbox, application, application), strict=True):
            pipe.incrby(key, units)
            pipe.expire(key, window.window_seconds, nx=True)
        pipe.execute()
        return
    refused, wait_ms = spend(keys=keys, args=[
        units, mailbox.units, mailbox.window_seconds * 1000, application.units, application.window_seconds * 1000,
        str(connection.company_id), settings.QUOTA_FAIR_SHARE_FROM])
    if refused:
        wait = max(1, math.ceil(max(int(wait_ms), 0) / 1000))
        raise Throttled(f"{REFUSED_BY[int(refused)]} budget spent for {connection.provider}; {wait} s to go",
                        retry_after=float(wait), user_message=WAITING)


# Each connection's admitted work on this thread: the meter of its Gmail calls and the units it was
# admitted with; ``charge`` counts the difference.
_admitted = threading.local()


def admit(*, connection: MailboxConnection, sending: bool = False) -> None:
    """Take one request's worth (a send's, for ``sending``) from the mailbox's, the application's
    and the company's budgets, or raise Throttled with the wait until they allow it."""
    units = (SEND_UNITS if sending else UNITS_PER_REQUEST)[connection.provider]
    _spend(connection, units, check=True)
    marks = getattr(_admitted, "marks", None)
    if marks is None:
        marks = _admitted.marks = {}
    marks[connection.pk] = (gmail_units.start_metering(), units)


def charge(*, connection: MailboxConnection, requests: int) -> None:
    """Count what a piece of work cost beyond what it was admitted with: for Gmail, the documented
    units of the calls it made since ``admit`` on this thread; otherwise (Graph, Google Calendar)
    the requests it made beyond the first."""
    _spend(connection, _extra_units(connection, requests), check=False)


def _extra_units(connection: MailboxConnection, requests: int) -> int:
    """The units ``charge`` counts (and forgets the admission's mark)."""
    per_request = UNITS_PER_REQUEST[connection.provider]
    mark = getattr(_admitted, "marks", {}).pop(connection.pk, None)
    if connection.provider == "google" and mark is not None:
        meter, admitted_with = mark
        metered = meter.units
        if metered > 0:
            return max(metered - admitted_with, 0)
    return max(requests - 1, 0) * per_request


def spent(*, connection: MailboxConnection) -> dict[str, int]:
    """What the mailbox, the application and the company have spent in their current windows."""
    if not settings.REDIS_URL:
        return {}
    client, _ = _client(settings.REDIS_URL)  # for tests and operators: errors are raised
    keys, _, _ = _keys(connection, time.time())
    values = client.mget(keys[:3])
    return {name: int(value or 0) for name, value in zip(("mailbox", "application", "company"), values, strict=True)}



# -- Graph's concurrent requests per mailbox -------------------------------------------------------

# Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
# "4 concurrent requests" per app per mailbox: capture, calendar and sending on every worker draw
# their slots from one set per mailbox in Redis. A slot is a lease (Redis's own clock, so hosts'
# clocks do not matter): a worker killed mid-request holds it until the lease lapses, no longer.
GRAPH_CONCURRENT_REQUESTS = 4

# KEYS: the mailbox's set of held slots (member: holder, score: when its lease lapses, in ms).
# ARGV: the limit, slots wanted, lease ms, the holder's token. Returns 0 when taken, or the ms until
# the first held slot's lease lapses (the longest the caller need wait for one).
TAKE_SLOTS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local wanted = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) + wanted > tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
local lease = tonumber(ARGV[3])
for i = 1, wanted do
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], lease)
return 0
"""
SLOT_POLL_SECONDS = 0.02
BUSY_MAILBOX = "Aspire is waiting for other work on this mailbox to finish; it will resume shortly."


@functools.cache
def _slots_script(url: str) -> Any:
    client, _ = _client(url)
    return client.register_script(TAKE_SLOTS)


def _slots_key(mailbox: str) -> str:
    return f"graph:slots:{mailbox}"


@contextlib.contextmanager
def graph_slots(mailbox: str, count: int = 1) -> Iterator[None]:
    """Hold ``count`` of the mailbox's concurrent Graph requests while the block runs, waiting for
    them (up to ``GRAPH_SLOT_WAIT_SECONDS``, then ``Throttled``). ``mailbox`` is any stable key of the
    mailbox (the Microsoft account's id). Without Redis, or while it is unreachable, nothing is
    held: Graph's own 429 answers still take the throttled path."""
    count = max(1, min(count, GRAPH_CONCURRENT_REQUESTS))
    token = f"{uuid.uuid4().hex}"
    held = _take_slots(mailbox, count, token) if settings.REDIS_URL and mailbox else False
    try:
        yield
    finally:
        if held:
            members = [f"{token}:{i}" for i in range(1, count + 1)]
            with contextlib.suppress(redis.RedisError):  # else the lease lapses on its own
                _client(settings.REDIS_URL)[0].zrem(_slots_key(mailbox), *members)


def _take_slots(mailbox: str, count: int, token: str) -> bool:
    lease_ms = int(settings.GRAPH_SLOT_LEASE_SECONDS * 1000)
    deadline = time.monotonic() + settings.GRAPH_SLOT_WAIT_SECONDS
    try:
        script = _slots_script(settings.REDIS_URL)
        while True:
            wait_ms = int(script(keys=[_slots_key(mailbox)], args=[GRAPH_CONCURRENT_REQUESTS, count, lease_ms, token]))
            if wait_ms == 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                raise Throttled(f"no concurrent Graph request free for {count} in "
                                f"{settings.GRAPH_SLOT_WAIT_SECONDS} s", retry_after=1.0, user_message=BUSY_MAILBOX)
            # Slots usually free within a request's time: look again soon, a little apart from the others.
            time.sleep(min(left, wait_ms / 1000, SLOT_POLL_SECONDS * (1 + random.random())))  # noqa: S311
    except redis.RedisError as exc:
        log.warning("Graph concurrency slots unavailable, requests go unmetered: %s", type(exc).__name__)
        return False


def graph_slots_held(mailbox: str) -> int:
    """How many of the mailbox's concurrent Graph requests are held now (for tests and operators)."""
    client, _ = _client(settings.REDIS_URL)
    key = _slots_key(mailbox)
    seconds, micros = client.time()  # the clock the leases are written in
    return int(client.zcount(key, seconds * 1000 + micros // 1000, "+inf"))
