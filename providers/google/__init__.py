"""Google Workspace and Gmail: sign-in (``auth``), Gmail calls (``gmail``), payload mapping
(``mapping``) and the HTTP plumbing with its error translation (``transport``)."""

from __future__ import annotations

from .auth import GoogleConfig
from .provider import GoogleProvider

__all__ = ["GoogleConfig", "GoogleProvider"]
