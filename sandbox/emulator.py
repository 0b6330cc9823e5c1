"""The interface each provider emulator (``sandbox.microsoft``, ``sandbox.google``) implements.

The control API calls these so tests and the demo can act "as the provider's user would"
without knowing each provider's internals.

Neutral event spec used by ``put_event`` / ``change_event`` (all keys optional but start/end; checked
by sandbox.event_spec):
    {"subject": str, "body": str, "location": str,
     "start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00", "time_zone": "America/Chicago",
     "all_day": bool,            # start/end are then dates: "2026-12-01"
     "rrule": "FREQ=WEEKLY;COUNT=10",   # a recurring series
     "private": bool, "show_as": "busy" | "free", "attendees": ["a@example.com", ...]}
or ``{"raw": {...}}``: an event resource in the provider's own shape, stored and served unchecked.
``change_event`` and ``delete_event`` accept an occurrence id to make an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from starlette.routing import BaseRoute

Json = dict[str, Any]


class Emulator(Protocol):
    name: str  # "microsoft" or "google"

    def routes(self) -> list[BaseRoute]: ...

    def setup_account(self, account: Json) -> None:
        """Create the account's default folders / labels and calendar."""

    def put_message(self, account: Json, *, folder: str, raw: bytes) -> Json:
        """Put raw RFC 5322 mail in a folder (Microsoft, by display name, e.g. "Inbox", "Aspire")
        or label (Google, by name or system id, e.g. "INBOX", "Aspire"), as if the user moved
        it there. Returns {"id": provider message id, ...}. Fires push notifications."""

    def move_message(self, account: Json, message_id: str, *, folder: str) -> Json:
        """Move a message to a folder (by name) as the user would in their mail client (Gmail:
        take it out of the Inbox and give it the label). Fires push notifications."""

    def mailbox(self, account: Json) -> Json:
        """{"folders": [{"id", "name", "messages": [{"id", "subject", "internet_message_id"}]}]}"""

    def put_event(self, account: Json, spec: Json) -> Json: ...

    def change_event(self, account: Json, event_id: str, changes: Json) -> Json: ...

    def delete_event(self, account: Json, event_id: str) -> None: ...

    def respond(self, account: Json, event_id: str, attendee: str, response: str) -> Json:
        """An attendee answers the account's event ("accepted", "declined", "tentative", "none"),
        as their calendar would tell the organiser's: the event changes, so syncs see it."""

    def events(self, account: Json) -> list[Json]:
        """The account's events as the provider would list them (series masters and exceptions)."""

    def expire_sync_state(self, account: Json) -> None:
        """Invalidate every delta link / sync token / history id issued so far for the account."""


@contextlib.contextmanager
def control_errors(*api_errors: type[Exception]) -> Iterator[None]:
    """An emulator's own API errors (which carry ``status`` and ``message``), raised for a control
    API call, become the control API's 404 (not found, gone) or 400 with the API's reason."""
    try:
        yield
    except api_errors as error:
        status, message = getattr(error, "status", 400), getattr(error, "message", str(error))
        raise (LookupError if status in (404, 410) else ValueError)(message) from error
