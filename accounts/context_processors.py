from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import MailboxConnection


def signin_banner(request: HttpRequest) -> dict[str, Any]:
    """Whether the signed-in user's connection needs them to sign in again: the banner on every
    page (templates/base.html) until they reconnect. One indexed lookup (the user's one connection)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.company_id is None:
        return {}
    return {"mailbox_needs_signin": MailboxConnection.objects.filter(
        user_id=user.pk, state=MailboxConnection.State.NEEDS_SIGNIN).exists()}
