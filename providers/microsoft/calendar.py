"""Outlook calendars through Microsoft Graph: ``calendarView/delta`` for reading, events for writing.

``calendarView`` (rather than ``/me/events``) returns every instance of a series in the window, with
moved and cancelled exceptions applied by Exchange, so nothing here expands recurrence rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tzlocal.windows_tz import win_tz

from ..base import Grant
from ..calendar import (
    Attendee,
    CalendarChanges,
    CalendarEvent,
    CalendarWatch,
    ChangesListing,
    EventDraft,
    UnreadableEvent,
    required_id,
    text,
)
from ..errors import NotFound
from ..html_text import html_to_text
from . import subscriptions
from .graph import IMMUTABLE_IDS, GraphClient, segment

if TYPE_CHECKING:
    from .provider import MicrosoftProvider

PAGE_SIZE = 100
# Times in UTC (the event's own zone comes separately, in originalStartTimeZone), immutable ids,
# bigger pages than Graph's default of 10, and the notes as text: Graph serves a body as HTML
# unless asked, and its own text rendition keeps the organiser's lines and spacing as Outlook
# shows them (Aspire's notes are text, and a round trip through HTML would change them).
# Reference: https://learn.microsoft.com/en-us/graph/api/user-list-events#support-various-time-zones
# Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
# Reference: https://learn.microsoft.com/en-us/graph/api/event-get (Prefer: outlook.body-content-type)
PREFER = f'{IMMUTABLE_IDS}, outlook.timezone="UTC", outlook.body-content-type="text", odata.maxpagesize={PAGE_SIZE}'
GRAPH_DATETIME = "%Y-%m-%dT%H:%M:%S"


class MicrosoftCalendar:
    def __init__(self, provider: MicrosoftProvider) -> None:
        self.provider = provider

    def _graph(self, grant: Grant) -> GraphClient:
        return self.provider._graph(grant)  # the same session and concurrency slots

    def changes(self, grant: Grant, *, cursor: str, window_start: dt.datetime,
                window_end: dt.datetime) -> CalendarChanges:
        """Follow the delta link (``cursor``) or start a delta over the window; every page up to the
        next delta link. An expired delta link is ``410 SyncStateNotFound``: ``SyncStateExpired``."""
        graph = self._graph(grant)
        headers = {"Prefer": PREFER}
        if cursor:
            link: str | None = cursor
            params: dict[str, str | int] | None = None
        else:
            # Reference: https://learn.microsoft.com/en-us/graph/api/event-delta
            link = "/me/calendarView/delta"
            params = {"startDateTime": _iso_z(window_start), "endDateTime": _iso_z(window_end)}
        listing = ChangesListing()
        delta_link = ""
        while link:
            body = graph._json(graph.request("GET", link, params=params, headers=headers))
            listing.requests += 1
            params = None
            for item in body.get("value", []):
                with listing.reading(item):
                    if isinstance(item, Mapping) and "@removed" in item:
                        # Deleted, or moved out of the delta's range: Graph says the same for both.
                        # Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
                        listing.left.append(required_id(item))
                    elif isinstance(item, Mapping) and item.get("isCancelled") is True:
                        listing.removed.append(required_id(item))
                    elif not isinstance(item, Mapping) or item.get("type") != "seriesMaster":
                        listing.changed.append(event_from_graph(item))
            link = body.get("@odata.nextLink")
            delta_link = str(body.get("@odata.deltaLink") or delta_link)
        return listing.changes(cursor=delta_link, full=not cursor)

    def create_event(self, grant: Grant, draft: EventDraft, *, client_id: str) -> CalendarEvent:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events
        # transactionId makes a repeated create (after a lost answer) return the first event.
        body = {**graph_event(draft), "transactionId": client_id}
        graph = self._graph(grant)
        created = graph._json(graph.request("POST", "/me/events", json=body, headers={"Prefer": PREFER}))
        return event_from_graph(created)

    def update_event(self, grant: Grant, event_id: str, draft: EventDraft, *, etag: str) -> CalendarEvent:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-update
        graph = self._graph(grant)
        headers = {"Prefer": PREFER, **({"If-Match": etag} if etag else {})}
        updated = graph._json(graph.request("PATCH", f"/me/events/{segment(event_id)}", json=graph_event(draft),
                                            headers=headers))
        return event_from_graph(updated)

    def delete_event(self, grant: Grant, event_id: str, *, etag: str, notify: bool = False) -> None:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-delete
        # Graph sends attendees a cancellation itself; an event never invited has none to send to.
        headers = {"If-Match": etag} if etag else {}
        with contextlib.suppress(NotFound):  # already deleted
            self._graph(grant).request("DELETE", f"/me/events/{segment(event_id)}", headers=headers).close()


    def get_event(self, grant: Grant, event_id: str) -> CalendarEvent | None:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-get
        graph = self._graph(grant)
        try:
            item = graph._json(graph.request("GET", f"/me/events/{segment(event_id)}", headers={"Prefer": PREFER}))
        except NotFound:
            return None
        return event_from_graph(item)

    def watch(self, grant: Grant, *, notification_url: str, lifecycle_url: str, client_state: str,
              renew: CalendarWatch | None = None) -> CalendarWatch:
        return subscriptions.watch(self._graph(grant), resource="me/events", change_type="created,updated,deleted",
                                   notification_url=notification_url, lifecycle_url=lifecycle_url,
                                   client_state=client_state, renew=renew)

    def stop_watch(self, grant: Grant, watch: CalendarWatch) -> None:
        subscriptions.stop(self._graph(grant), watch.id)


# -- mapping ---------------------------------------------------------------------------------


def iana_zone(name: object) -> str | None:
    """An IANA zone for a Graph zone name: Windows names (``Pacific Standard Time``), as Outlook
    writes them, through the CLDR table; IANA names as they are; None when unknown."""
    if not name or not isinstance(name, str):
        return None
    candidate = win_tz.get(name, name)
    try:
        zoneinfo.ZoneInfo(candidate)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def parse_graph_time(value: object) -> dt.datetime | None:
    """A dateTimeTimeZone as an aware UTC datetime; None when there is none. Graph writes seven
    fractional digits, which ``fromisoformat`` does not take, so the fraction is dropped (Outlook
    keeps whole seconds). ``UnreadableEvent`` when there is a time that cannot be read."""
    if not value:
        return None
    if not isinstance(value, Mapping):
        raise UnreadableEvent("its time is not a date and time")
    if not value.get("dateTime"):
        return None
    try:
        wall = dt.datetime.fromisoformat(str(value["dateTime"]).split(".")[0].removesuffix("Z"))
    except ValueError as exc:
        raise UnreadableEvent("its time could not be read") from exc
    zone_name = iana_zone(value.get("timeZone") or "UTC") or "UTC"
    return wall.replace(tzinfo=zoneinfo.ZoneInfo(zone_name)).astimezone(dt.UTC)


def _floating_date(value: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(str(value["dateTime"])[:10]), dt.time(), dt.UTC)


def plain_text(body: object) -> str:
    if not isinstance(body, Mapping):
        return ""
    content = text(body.get("content"))
    if text(body.get("contentType")).lower() == "html":
        content = html_to_text(content, links=True)  # if Graph answered in HTML all the same
    return content.replace("\r\n", "\n").strip()  # Graph's text has Windows line ends


def event_from_graph(item: object) -> CalendarEvent:
    """A Graph event as a CalendarEvent. Raises ``UnreadableEvent`` for an item that cannot be one
    (no id, no start); other oddities are read as well as they can be and noted in ``problems``."""
    if not isinstance(item, Mapping):
        raise UnreadableEvent("it is not an event")
    event_id = required_id(item)
    problems: list[str] = []
    all_day = item.get("isAllDay") is True
    try:
        start = parse_graph_time(item.get("start"))
    except UnreadableEvent as exc:
        raise UnreadableEvent("its start time could not be read") from exc
    if start is None:
        raise UnreadableEvent("it has no start time")
    try:
        end = parse_graph_time(item.get("end"))
    except UnreadableEvent:
        end = None
    if all_day:
        # Floating dates: midnight in whatever zone Graph labelled them with, so the date is read
        # from the text rather than converted.
        start = _floating_date(item["start"])
        end = _floating_date(item["end"]) if end is not None else None
    if end is None or end < start:
        problems.append("The event had no valid end; it is shown ending when it starts.")
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta())
    raw_zone = item.get("originalStartTimeZone")
    zone_name = iana_zone(raw_zone)
    if zone_name is None:
        if raw_zone:
            problems.append(f"Its time zone “{text(raw_zone)}” is not one Aspire knows; times are kept in UTC.")
        zone_name = "UTC"
    attendees = item.get("attendees") or []
    if not isinstance(attendees, list):
        attendees = []
        problems.append("Its attendees could not be read.")
    people = [a for a in attendees if isinstance(a, Mapping) and isinstance(a.get("emailAddress"), Mapping)]
    organizer = item.get("organizer")
    organizer_email = organizer.get("emailAddress") if isinstance(organizer, Mapping) else None
    own_status = item.get("responseStatus")
    location = item.get("location")
    original_start: dt.datetime | None = None
    if item.get("originalStart"):
        try:
            original_start = dt.datetime.fromisoformat(text(item["originalStart"]).replace("Z", "+00:00"))
        except ValueError:
            problems.append("Its original start in the series could not be read.")
    return CalendarEvent(
        id=event_id,
        start=start,
        end=end,
        title=text(item.get("subject")),
        location=text(location.get("displayName")) if isinstance(location, Mapping) else "",
        notes=plain_text(item.get("body")),
        time_zone=zone_name,
        all_day=all_day,
        sensitivity=(text(item.get("sensitivity")) or "normal").lower(),
        show_as=text(item.get("showAs")) or "busy",
        attendees=tuple(Attendee(address=text(a["emailAddress"].get("address")),
                                 name=text(a["emailAddress"].get("name")), response=graph_response(a.get("status")))
                        for a in people if text(a["emailAddress"].get("address"))),
        ical_uid=text(item.get("iCalUId")),
        series_id=text(item.get("seriesMasterId")),
        original_start=original_start if original_start is None or original_start.tzinfo else None,
        etag=text(item.get("@odata.etag")) or text(item.get("changeKey")),
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (transactionId)
        client_id=text(item.get("transactionId")),
        problems=tuple(problems),
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (isOrganizer, responseStatus)
        is_organizer=item.get("isOrganizer") is not False,
        organizer=Attendee(address=text(organizer_email.get("address")), name=text(organizer_email.get("name")))
        if isinstance(organizer_email, Mapping) and text(organizer_email.get("address")) else None,
        my_response=graph_response(own_status),
    )


def graph_response(status: object) -> str:
    """A Graph responseStatus as one of ``providers.calendar.RESPONSES``, or "" (none yet)."""
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/responsestatus
    value = text(status.get("response")) if isinstance(status, Mapping) else ""
    return {"accepted": "accepted", "declined": "declined", "tentativelyAccepted": "tentative"}.get(value, "")


def graph_event(draft: EventDraft) -> dict[str, Any]:
    zone = zoneinfo.ZoneInfo(draft.time_zone)
    if draft.all_day:
        start = {"dateTime": draft.start.date().strftime("%Y-%m-%dT00:00:00"), "timeZone": draft.time_zone}
        end = {"dateTime": draft.end.date().strftime("%Y-%m-%dT00:00:00"), "timeZone": draft.time_zone}
    else:
        start = {"dateTime": draft.start.astimezone(zone).strftime(GRAPH_DATETIME), "timeZone": draft.time_zone}
        end = {"dateTime": draft.end.astimezone(zone).strftime(GRAPH_DATETIME), "timeZone": draft.time_zone}
    return {
        "subject": draft.title,
        "body": {"contentType": "text", "content": draft.notes},
        "location": {"displayName": draft.location},
        "start": start,
        "end": end,
        "isAllDay": draft.all_day,
        "sensitivity": "private" if draft.private else "normal",
        "showAs": draft.show_as,
        # Graph invites whoever is on an event its organiser creates or changes, so attendees go
        # only with an invitation. Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events
        "attendees": [{"emailAddress": {"address": a.address, "name": a.name}, "type": "required"}
                      for a in draft.attendees] if draft.invite else [],
    }


def _iso_z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
