"""Gmail's per-user rate limit: quota units per moving one-second window."""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING

from .common import ApiError, Json

if TYPE_CHECKING:
    from ..app import Sandbox

# Reference: https://developers.google.com/workspace/gmail/api/reference/quota
# The sandbox's own copy of Google's per-method table (the sandbox imports nothing of the product);
# the product's is providers/google/quota.py, and tests/accounts/test_gmail_units.py holds the two
# to the same figures.
USER_UNITS_PER_SECOND = 250
GMAIL_COSTS = {
    "gmail.getProfile": 1,
    "gmail.sendAs.list": 1,
    "gmail.labels.list": 1,
    "gmail.labels.get": 1,
    "gmail.labels.create": 5,
    "gmail.labels.patch": 5,
    "gmail.labels.update": 5,
    "gmail.labels.delete": 5,
    "gmail.messages.list": 5,
    "gmail.messages.get": 5,
    "gmail.messages.attachments.get": 5,
    "gmail.messages.modify": 5,
    "gmail.messages.trash": 5,
    "gmail.messages.delete": 10,
    "gmail.messages.batchModify": 50,
    "gmail.messages.send": 100,
    "gmail.history.list": 2,
    "gmail.watch": 100,
    "gmail.stop": 50,
}


class UserQuota:
    """Charges Gmail calls against the per-user limit; Calendar calls are not metered here."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.spent: dict[str, collections.deque[tuple[float, int]]] = collections.defaultdict(collections.deque)

    def charge(self, account: Json, operation: str) -> None:
        cost = GMAIL_COSTS.get(operation)
        if cost is None or not self.sandbox.limits_enabled:
            return
        window = self.spent[account["id"]]
        moment = time.monotonic()
        while window and window[0][0] <= moment - 1.0:
            window.popleft()
        if sum(units for _, units in window) + cost > USER_UNITS_PER_SECOND:
            # Gmail answers this 429 Too many requests, or in its older form 403 User Rate Limit
            # Exceeded; POST /_sandbox/limits {"gmail_rate_limit_status": 403} picks the second.
            # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors#resolve_a_429_error_too_many_requests
            # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors#resolve_a_403_error_user_rate_limit_exceeded
            status = self.sandbox.gmail_rate_limit_status
            raise ApiError(
                status, "userRateLimitExceeded",
                "User-rate limit exceeded." if status == 429 else "User Rate Limit Exceeded", domain="usageLimits",
                headers={"Retry-After": "1"},
            )
        window.append((moment, cost))
