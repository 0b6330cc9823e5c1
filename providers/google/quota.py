"""Pacing Gmail calls under Google's per-user quota, so a busy mailbox waits a moment instead of
being refused.

Gmail allows each user 250 quota units in any one second, and a message costs 5 units to read:
a capture run that reads a page of 50 as fast as it can spends a second's quota in a fraction of
a second, is answered 429, and (rightly) backs off for the Retry-After. Pacing in the client keeps
the run going at the rate Gmail allows. The quota is per user, and one capture run holds a
mailbox at a time, so pacing within the process that runs it is what matters; the budget stays a
little under Google's figure, for the user's other clients and for the send queue.
"""

from __future__ import annotations

import collections
import threading
import time

# Reference: https://developers.google.com/workspace/gmail/api/reference/quota
USER_UNITS_PER_SECOND = 250
BUDGET = int(USER_UNITS_PER_SECOND * 0.9)
COSTS = {"messages.list": 5, "messages.get": 5, "messages.batchModify": 50, "history.list": 2}
WINDOW = 1.0


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
