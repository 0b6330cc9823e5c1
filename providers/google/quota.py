"""Gmail's quota units: the one table of what each method costs, a meter of what each piece of work
spends, and pacing under Google's per-user quota so a busy mailbox waits a moment instead of
being refused.

Every Gmail request goes through ``transport.execute``, which counts its method's units on the
work's meter (``start_metering``); ``accounts.quotas`` reads it to charge a run or a send what it
really cost in the mailbox's and the application's budgets.

Gmail allows each user 250 quota units in any one second, and a message costs 5 units to read:
a capture run that reads a page of 50 as fast as it can spends a second's quota in a fraction of
a second, is answered 429, and (rightly) backs off for the Retry-After. Pacing in the client keeps
the run going at the rate Gmail allows. The quota is per user, and one capture run holds a
mailbox at a time, so pacing within the process that runs it is what matters; the budget stays a
little under Google's figure, for the user's other clients and for the send queue.
"""

from __future__ import annotations

import collections
import contextvars
import threading
import time

# Reference: https://developers.google.com/workspace/gmail/api/reference/quota
# Units per method, by the names Google's table gives them (the discovery method id without
# ``gmail.users.``). The sandbox keeps its own copy (sandbox/google/quota.py: it may not import
# the product); tests/accounts/test_gmail_units.py holds the two to the same figures.
COSTS = {
    "getProfile": 1,
    "history.list": 2,
    "labels.create": 5,
    "labels.delete": 5,
    "labels.get": 1,
    "labels.list": 1,
    "labels.patch": 5,
    "labels.update": 5,
    "messages.attachments.get": 5,
    "messages.batchDelete": 50,
    "messages.batchModify": 50,
    "messages.delete": 10,
    "messages.get": 5,
    "messages.import": 25,
    "messages.insert": 25,
    "messages.list": 5,
    "messages.modify": 5,
    "messages.send": 100,
    "messages.trash": 5,
    "messages.untrash": 5,
    "settings.sendAs.get": 1,
    "settings.sendAs.list": 1,
    "stop": 50,
    "threads.get": 10,
    "threads.list": 10,
    "threads.modify": 10,
    "watch": 100,
}
GMAIL_METHOD_PREFIX = "gmail.users."

USER_UNITS_PER_SECOND = 250
BUDGET = int(USER_UNITS_PER_SECOND * 0.9)
WINDOW = 1.0


class Meter:
    """The Gmail units spent by one piece of work (a run, a send), from every thread it uses."""

    def __init__(self) -> None:
        self.units = 0
        self._lock = threading.Lock()

    def add(self, units: int) -> None:
        with self._lock:
            self.units += units


# The meter of the work running in this context; threads the work starts carry it over when they
# run in a copy of the context (``contextvars.copy_context().run``), as capture's fetches do.
_meter: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("gmail_meter", default=None)


def start_metering() -> Meter:
    """Count the Gmail units of the calls made from here on, in this context, on a new meter."""
    meter = Meter()
    _meter.set(meter)
    return meter


def units_of(method_id: str) -> int:
    """The quota units of one request, by its discovery method id (``gmail.users.messages.get``);
    0 for what is not a Gmail call (Calendar has quotas of its own, counted in requests)."""
    if not method_id.startswith(GMAIL_METHOD_PREFIX):
        return 0
    return COSTS[method_id.removeprefix(GMAIL_METHOD_PREFIX)]


def count_request(method_id: str) -> None:
    """Add a request's units to the current meter, if any (``transport.execute`` calls it)."""
    meter = _meter.get()
    if meter is not None:
        meter.add(units_of(method_id))


class UserQuota:
    """Units spent per user over the last second, shared by the threads of one process."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self._spent: dict[str, collections.deque[tuple[float, int]]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def spend(self, user: str, method: str) -> None:
        """Wait until ``method`` fits in the user's last second of quota, then count it."""
        units = COSTS[method]
        while True:
            with self._lock:
                now = time.monotonic()
                window = self._spent[user]
                while window and window[0][0] <= now - WINDOW:
                    window.popleft()
                if sum(spent for _, spent in window) + units <= self.budget:
                    window.append((now, units))
                    return
                wait = window[0][0] + WINDOW - now
            time.sleep(max(wait, 0.001))
