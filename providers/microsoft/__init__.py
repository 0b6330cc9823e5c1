"""Microsoft 365: sign-in with msal (``auth``), a small Graph client (``graph``), Graph JSON to value
types (``mapping``), and ``MicrosoftProvider`` tying them together (``provider``)."""

from __future__ import annotations

from .config import MicrosoftConfig
from .graph import AccessTokenRejected, SendOutcomeUnknown
from .provider import MicrosoftProvider

__all__ = ["AccessTokenRejected", "MicrosoftConfig", "MicrosoftProvider", "SendOutcomeUnknown"]
