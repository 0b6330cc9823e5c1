"""What a record's page offers to do next ("Write email", "New appointment"), contributed by the
apps that do it. The record pages live below the sync apps and may not name their URLs: each sync
app registers a function here when it loads (its ``AppConfig.ready``), and the page shows what they
return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model


@dataclass(frozen=True)
class RecordAction:
    label: str
    url: str


ActionFor = Callable[[Model, Any], RecordAction | None]
_actions: dict[str, ActionFor] = {}


def register(key: str, action_for: ActionFor) -> None:
    """Offer an action on record pages; ``action_for(record, user)`` returns it, or None where it
    does not apply. Registering the same key again replaces it (apps load once, tests reload)."""
    _actions[key] = action_for


def actions_for(record: Model, user: Any) -> list[RecordAction]:
    return [action for action_for in _actions.values() if (action := action_for(record, user)) is not None]
