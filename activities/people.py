"""How a sender or recipient is written on a page: "Name <address>", so the address a person
would file the mail by is always there, or whichever of the two the message had."""

from __future__ import annotations

from typing import Any


def person(name: str, address: str) -> str:
    if name and address and name != address:
        return f"{name} <{address}>"
    return name or address


def people(value: Any) -> list[str]:
    """Recipients as stored ([[name, address], ...]); anything malformed is shown as best we can."""
    shown = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            shown.append(person(str(entry[0] or ""), str(entry[1] or "")))
        elif entry:
            shown.append(str(entry))
    return [one for one in shown if one]
