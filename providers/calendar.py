"""What calendar sync needs from a provider, and the values that cross that line.

Times are aware datetimes in UTC; ``time_zone`` is the event's own IANA zone (Windows zone names from
Graph are translated), kept so an appointment can be shown and edited in the zone it was made in.
All-day events are floating dates: ``start`` and ``end`` are midnight UTC of their first day and of
the day after their last, whatever zone anyone looks from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .base import Grant, PushChannel

# Graph sensitivity and Google visibility values that make an event private whatever the
# calendar's own setting.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (sensitivity)
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (visibility)
PRIVATE_SENSITIVITIES = frozenset({"private", "personal", "confidential"})


# An attendee's answer, as both providers' values are read: Graph's ``tentativelyAccepted`` and
# Google's ``tentative`` are "tentative"; Graph's none / notResponded and Google's needsAction are "".
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/responsestatus
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (attendees[].responseStatus)
RESPONSES = ("accepted", "declined", "tentative")


@dataclass(frozen=True)
class Attendee:
    address: str
    name: str = ""
    response: str = ""


@dataclass(frozen=True)
class CalendarEvent:
    """One event instance as the provider has it: a single event, or one occurrence of a series
    (moved and cancelled exceptions already applied by the provider)."""

    id: str
    start: dt.datetime
    end: dt.datetime
    title: str = ""
    location: str = ""
    notes: str = ""
    time_zone: str = "UTC"
    all_day: bool = False
    # "normal", "private", "personal", "confidential" (Google's "private" and "confidential" too).
    sensitivity: str = "normal"
    show_as: str = "busy"
    attendees: tuple[Attendee, ...] = ()
    ical_uid: str = ""
    series_id: str = ""
    original_start: dt.datetime | None = None
    etag: str = ""
    # The id Aspire gave the create that made this event (``create_event``'s ``client_id``), where
    # the provider keeps it: how an event whose create answer was lost is still known as ours.
    client_id: str = ""
    # What was wrong with the provider's data and how it was read, in plain words.
    problems: tuple[str, ...] = ()
    # Whether the calendar's own user organises it; when not, who does, and the user's answer.
    is_organizer: bool = True
    organizer: Attendee | None = None
    my_response: str = ""

    @property
    def is_private(self) -> bool:
        return self.sensitivity in PRIVATE_SENSITIVITIES


class UnreadableEvent(ValueError):
    """A listed item that cannot be taken in as an event (no start, no id); the message says why in
    plain words."""


@dataclass(frozen=True)
class SkippedEvent:
    """An item of the provider's listing that was left out because it could not be read. ``id`` is
    the provider's, when the item had one."""

    id: str
    reason: str


@dataclass(frozen=True)
class CalendarChanges:
    """What changed since a cursor (or everything in the window, when ``full``).

    ``full`` means the listing is complete: an event the caller holds and did not receive has gone
    (unless it is among ``skipped``: listed, but unreadable this time).
    ``cursor`` is what to pass next time (Graph's deltaLink, Google's nextSyncToken)."""

    changed: tuple[CalendarEvent, ...]
    removed: tuple[str, ...]
    cursor: str
    full: bool
    requests: int = 0
    skipped: tuple[SkippedEvent, ...] = ()
    # Events the listing says left the window without saying whether they were deleted or moved
    # out of it (Graph's calendarView delta reports both as ``@removed``); ``removed`` are deleted.
    left: tuple[str, ...] = ()


@dataclass
class ChangesListing:
    """A listing being read page by page, by each provider's ``changes``. An item that cannot be
    read is kept in ``skipped`` and the listing goes on (``CalendarProvider.changes``)."""

    changed: list[CalendarEvent] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    skipped: list[SkippedEvent] = field(default_factory=list)
    requests: int = 0

    @contextlib.contextmanager
    def reading(self, item: object) -> Iterator[None]:
        """Read one listed item inside this block; an ``UnreadableEvent`` skips it."""
        try:
            yield
        except UnreadableEvent as exc:
            self.skipped.append(SkippedEvent(id=item_id(item), reason=str(exc)))

    def changes(self, *, cursor: str, full: bool) -> CalendarChanges:
        return CalendarChanges(changed=tuple(self.changed), removed=tuple(self.removed), cursor=cursor, full=full,
                               requests=self.requests, skipped=tuple(self.skipped), left=tuple(self.left))


@dataclass(frozen=True)
class EventDetails:
    """What an appointment made in Aspire says of itself. Never recurring."""

    title: str
    start: dt.datetime
    end: dt.datetime
    time_zone: str
    all_day: bool = False
    location: str = ""
    notes: str = ""
    private: bool = False
    show_as: str = "busy"
    # Send the attendees an invitation (and later updates). Without it the event carries no
    # attendees to Graph (which invites whoever is on an event), and Google is told sendUpdates=none.
    invite: bool = False


@dataclass(frozen=True)
class EventDraft(EventDetails):
    """An appointment made or changed in Aspire, on its way to the provider, with its attendees."""

    attendees: tuple[Attendee, ...] = field(default=())


# A calendar's push channel is the same value as a mail folder's: a Graph subscription, or a Google
# channel (``id`` and ``resource_id``, both needed to stop it).
CalendarWatch = PushChannel


class CalendarProvider(Protocol):
    """One provider's calendar. Methods raise ``providers.errors`` only."""

    def changes(self, grant: Grant, *, cursor: str, window_start: dt.datetime,
                window_end: dt.datetime) -> CalendarChanges:
        """Events changed since ``cursor``, or every event instance in the window when ``cursor``
        is empty. Raises ``SyncStateExpired`` when the cursor no longer works. One item that cannot
        be read never stops the listing: it is in ``skipped``."""
        ...

    def create_event(self, grant: Grant, draft: EventDraft, *, client_id: str) -> CalendarEvent:
        """Create the event. Repeating the call with the same ``client_id`` (32 hex digits) finds the
        event the first call made instead of making a second one."""
        ...

    def update_event(self, grant: Grant, event_id: str, draft: EventDraft, *, etag: str) -> CalendarEvent:
        """Change the event if it is still at ``etag``: ``Conflict`` when it changed at the provider
        since, ``NotFound`` when it was deleted there."""
        ...

    def delete_event(self, grant: Grant, event_id: str, *, etag: str, notify: bool = False) -> None:
        """Delete the event if it is still at ``etag`` (``Conflict`` otherwise); an event already
        gone is not an error. ``notify``: its invited attendees are sent a cancellation."""
        ...

    def get_event(self, grant: Grant, event_id: str) -> CalendarEvent | None:
        """The event as the provider has it now, or None when it is gone."""
        ...

    def watch(self, grant: Grant, *, notification_url: str, lifecycle_url: str, client_state: str,
              renew: CalendarWatch | None = None) -> CalendarWatch:
        """Ask to be notified of changes to the calendar at ``notification_url``; each notification
        carries ``client_state`` (Graph's lifecycle notifications go to ``lifecycle_url``). ``renew``
        is the current watch: extended where the provider allows it, replaced otherwise."""
        ...

    def stop_watch(self, grant: Grant, watch: CalendarWatch) -> None:
        """End a watch; one already gone is not an error."""
        ...


def item_id(item: object) -> str:
    """A listed item's id, if it has a usable one."""
    value = item.get("id") if isinstance(item, Mapping) else None
    return value if isinstance(value, str) else ""


def required_id(item: Mapping[str, Any]) -> str:
    """A listed item's id; ``UnreadableEvent`` when it has none."""
    event_id = item_id(item)
    if not event_id:
        raise UnreadableEvent("it has no id")
    return event_id


def text(value: object) -> str:
    """A text field as text: numbers as written, anything else (an object where text belongs) empty."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""
