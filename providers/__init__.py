"""Mail and calendar providers behind one interface. Plain Python: nothing here imports Django
or any other part of the product; callers pass configuration in."""

from __future__ import annotations

from .base import AuthRequest, Grant, MailboxIdentity, MailboxKind, Provider
from .errors import (
    AuthRevoked,
    Conflict,
    NotFound,
    ProviderError,
    SignInCancelled,
    SignInFailed,
    SyncStateExpired,
    Throttled,
    TransientError,
    UnsupportedMailbox,
)

__all__ = [
    "AuthRequest",
    "AuthRevoked",
    "Conflict",
    "Grant",
    "MailboxIdentity",
    "MailboxKind",
    "NotFound",
    "Provider",
    "ProviderError",
    "SignInCancelled",
    "SignInFailed",
    "SyncStateExpired",
    "Throttled",
    "TransientError",
    "UnsupportedMailbox",
]
