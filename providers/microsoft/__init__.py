"""Microsoft 365: sign-in with msal (``auth``), a small Graph client (``graph``), Graph JSON to value
types (``mapping``), and ``MicrosoftProvider`` tying them together (``provider``), with its calendar
half (``calendar``)."""

from __future__ import annotations

from .config import MicrosoftConfig
from .provider import MicrosoftProvider

__all__ = ["MicrosoftConfig", "MicrosoftProvider"]
