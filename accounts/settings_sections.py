"""What the Settings page offers beyond the mailbox and the profile, contributed by the apps that
do it (the calendar's personal link). The Settings page sits below the sync apps and may not name
their URLs: each app registers a function here when it loads, and the page shows what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettingsSection:
    title: str
    text: str
    url: str
    label: str


SectionFor = Callable[[Any], SettingsSection | None]
_sections: dict[str, SectionFor] = {}


def register(key: str, section_for: SectionFor) -> None:
    """Offer a section on the Settings page; ``section_for(user)`` returns it, or None where it does
    not apply. Registering the same key again replaces it."""
    _sections[key] = section_for


def sections_for(user: Any) -> list[SettingsSection]:
    return [section for section_for in _sections.values() if (section := section_for(user)) is not None]
