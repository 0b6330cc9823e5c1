"""Microsoft 365: sign-in with msal (``auth``), a small Graph client (``graph``), Graph JSON to value
types (``mapping``), and ``MicrosoftProvider`` tying them together (``provider``).

``AccessTokenRejected`` and ``SendOutcomeUnknown`` live in ``providers.errors`` (every provider
raises them); they are re-exported here for callers that imported them from this package."""

from __future__ import annotations

from ..errors import AccessTokenRejected, SendOutcomeUnknown
from .config import MicrosoftConfig
from .provider import MicrosoftProvider

__all__ = ["AccessTokenRejected", "MicrosoftConfig", "MicrosoftProvider", "SendOutcomeUnknown"]
