"""The OAuth sign-in state: single-use, short-lived, bound to the browser session and the user.

The random ``state`` goes to the provider and comes back on the callback; everything secret
about the sign-in (the PKCE verifier) stays here, server-side, in the session.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

from .mailbox import SyncChoices

SESSION_KEY = "mailbox_signins"
MAX_PENDING = 5


class SignInStateInvalid(Exception):
    pass


@dataclass(frozen=True)
class PendingSignIn:
    provider: str
    flow: dict[str, Any]
    choices: SyncChoices


def remember_signin(session: SessionBase, *, user_id: object, state: str, flow: dict[str, Any],
                    choices: SyncChoices) -> None:
    pending: dict[str, Any] = session.get(SESSION_KEY, {})
    now = time.time()
    pending = {k: v for k, v in pending.items() if now - v["created"] < settings.OAUTH_SIGNIN_TTL_SECONDS}
    # Keep the few newest: someone who opens several sign-in tabs can finish any of them.
    for stale in sorted(pending, key=lambda k: pending[k]["created"])[: max(0, len(pending) - MAX_PENDING + 1)]:
        del pending[stale]
    pending[state] = {
        "user": str(user_id), "created": now, "provider": choices.provider, "flow": flow,
        "choices": choices.as_dict(),
    }
    session[SESSION_KEY] = pending


def new_state() -> str:
    return secrets.token_urlsafe(32)


def take_signin(session: SessionBase, *, user_id: object, state: str) -> PendingSignIn:
    """The sign-in this callback belongs to, removed so it can't be used twice."""
    pending: dict[str, Any] = session.get(SESSION_KEY, {})
    entry = pending.pop(state, None) if state else None
    session[SESSION_KEY] = pending
    if entry is None:
        raise SignInStateInvalid("This sign-in link is unknown or was already used.")
    if entry["user"] != str(user_id):
        raise SignInStateInvalid("This sign-in was started by someone else.")
    if time.time() - entry["created"] > settings.OAUTH_SIGNIN_TTL_SECONDS:
        raise SignInStateInvalid("This sign-in took too long and expired.")
    return PendingSignIn(provider=entry["provider"], flow=entry["flow"],
                         choices=SyncChoices.from_dict(entry["choices"]))
