from __future__ import annotations

from typing import Any

from django import template

from activities.people import person
from activities.selectors import unmatched_emails

register = template.Library()


@register.simple_tag
def unmatched_count(user: Any) -> int:
    """How many of the user's captured emails wait for a contact (the nav badge)."""
    return unmatched_emails(user).count() if getattr(user, "is_authenticated", False) else 0


@register.filter
def sender(email: Any) -> str:
    """The sender as "Name <address>": an unmatched email is filed by its address."""
    return person(email.from_name, email.from_address) if email is not None else ""
