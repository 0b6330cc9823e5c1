"""Mail and calendar providers behind one interface. Plain Python: nothing here imports Django
or any other part of the product; callers pass configuration in."""

from __future__ import annotations

from .base import AuthRequest, Grant, MailboxIdentity, MailboxKind, Provider
from .errors import (
    AccessTokenRejected,
    AuthRevoked,
    Conflict,
    NotFound,
    ProviderError,
    SendOutcomeUnknown,
    SignInCancelled,
    SignInFailed,
    SyncStateExpired,
    Throttled,
    TransientError,
    UnsupportedMailbox,
)

__all__ = [
    "AccessTokenRejected",
    "AuthRequest",
    "AuthRevoked",
    "Conflict",
    "Grant",
    "MailboxIdentity",
    "MailboxKind",
    "NotFound",
    "Provider",
    "ProviderError",
    "SendOutcomeUnknown",
    "SignInCancelled",
    "SignInFailed",
    "SyncStateExpired",
    "Throttled",
    "TransientError",
    "UnsupportedMailbox",
]
