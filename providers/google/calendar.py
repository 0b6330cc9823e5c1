"""Google Calendar v3: ``events.list`` with sync tokens for reading, events for writing.

Listing uses ``singleEvents=true``: Google expands each series into its instances itself, with moved
and cancelled exceptions applied and wall-clock times kept across daylight-saving changes in the
series' own zone. The alternative, reading series masters and expanding their RRULE/EXDATE/RDATE
lines here with a recurrence library, would be a second recurrence engine that has to agree with
Google's on every edge (EXDATE zones, moved instances, DST gaps) and would drift from it silently.
With ``singleEvents`` a changed series comes back as all its instances, which costs a larger page
now and then and nothing else.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..base import Grant
from ..calendar import (
    RESPONSES,
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
from ..errors import Conflict, NotFound, SyncStateExpired
from ..html_text import html_to_text
from .transport import execute, google_errors

if TYPE_CHECKING:
    from .provider import GoogleProvider

# The tags Google Calendar's editor writes into a description (and those of pasted formatting).
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events ("description": can contain HTML)
EDITOR_TAG = re.compile(r"</?(?:a|b|br|div|em|h[1-6]|i|li|ol|p|span|strong|u|ul)\b[^<>]*>", re.IGNORECASE)
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list (maxResults)
PAGE_SIZE = 2500
CALENDAR = "primary"
# Google allows calendar channels up to 30 days; a week keeps a forgotten one short-lived.
CHANNEL_LIFETIME = dt.timedelta(days=7)


class GoogleCalendar:
    def __init__(self, provider: GoogleProvider) -> None:
        self.provider = provider

    def changes(self, grant: Grant, *, cursor: str, window_start: dt.datetime,
                window_end: dt.datetime) -> CalendarChanges:
        """With a sync token: what changed since, deletions included (``status: cancelled``). Without:
        every instance in the window. An expired token is ``410 fullSyncRequired``: ``SyncStateExpired``."""
        # Reference: https://developers.google.com/workspace/calendar/api/guides/sync
        params: dict[str, Any] = {"calendarId": CALENDAR, "singleEvents": True, "maxResults": PAGE_SIZE}
        if cursor:
            params["syncToken"] = cursor
        else:
            params["timeMin"] = window_start.astimezone(dt.UTC).isoformat()
            params["timeMax"] = window_end.astimezone(dt.UTC).isoformat()
        listing = ChangesListing()
        sync_token = ""
        page_token: str | None = None
        with self.provider.api(grant, "calendar") as service:
            while True:
                # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list
                body = execute(service.events().list(**params, **({"pageToken": page_token} if page_token else {})))
                listing.requests += 1
                calendar_zone = str(body.get("timeZone") or "UTC")
                for item in body.get("items", []):
                    with listing.reading(item):
                        if isinstance(item, Mapping) and item.get("status") == "cancelled":
                            listing.removed.append(required_id(item))
                        else:
                            listing.changed.append(event_from_google(item, calendar_zone))
                page_token = body.get("nextPageToken")
                if not page_token:
                    sync_token = str(body.get("nextSyncToken") or "")
                    break
        return listing.changes(cursor=sync_token, full=not cursor)

    def create_event(self, grant: Grant, draft: EventDraft, *, client_id: str) -> CalendarEvent:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
        # The id is ours (base32hex; a UUID's hex digits are in that alphabet), so inserting again
        # after a lost answer is a 409 and the first event is read back instead of made twice.
        with self.provider.api(grant, "calendar") as service:
            try:
                with google_errors():
                    created = execute(service.events().insert(calendarId=CALENDAR, sendUpdates=send_updates(draft),
                                                              body={**google_event(draft), "id": client_id}))
            except Conflict:
                # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/get
                created = execute(service.events().get(calendarId=CALENDAR, eventId=client_id))
        return event_from_google(created, draft.time_zone)

    def update_event(self, grant: Grant, event_id: str, draft: EventDraft, *, etag: str) -> CalendarEvent:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/patch
        # Reference: https://developers.google.com/workspace/calendar/api/guides/version-resources
        with self.provider.api(grant, "calendar") as service:
            request = service.events().patch(calendarId=CALENDAR, eventId=event_id, body=google_event(draft),
                                             sendUpdates=send_updates(draft))
            if etag:
                request.headers["If-Match"] = etag
            try:
                with google_errors():
                    updated = execute(request)
            except SyncStateExpired as exc:  # 410 "deleted": the event was deleted in Google
                raise NotFound(exc.detail) from exc
        return event_from_google(updated, draft.time_zone)

    def delete_event(self, grant: Grant, event_id: str, *, etag: str, notify: bool = False) -> None:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/delete
        with self.provider.api(grant, "calendar") as service:
            # A cancellation goes only to guests who were invited from Aspire.
            request = service.events().delete(calendarId=CALENDAR, eventId=event_id,
                                              sendUpdates="all" if notify else "none")
            if etag:
                request.headers["If-Match"] = etag
            try:
                with google_errors():
                    execute(request)
            except (NotFound, SyncStateExpired):
                pass  # gone already (404), or deleted before (410 "deleted")


    def get_event(self, grant: Grant, event_id: str) -> CalendarEvent | None:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/get
        with self.provider.api(grant, "calendar") as service:
            try:
                with google_errors():
                    item = execute(service.events().get(calendarId=CALENDAR, eventId=event_id))
            except (NotFound, SyncStateExpired):
                return None
        if not isinstance(item, Mapping) or item.get("status") == "cancelled":
            return None
        return event_from_google(item, "UTC")

    def watch(self, grant: Grant, *, notification_url: str, lifecycle_url: str = "", client_state: str,
              renew: CalendarWatch | None = None) -> CalendarWatch:
        """A new notification channel on the calendar. Google channels cannot be extended, so a
        renewal opens a new one and then stops ``renew`` (the two overlap, so nothing is missed)."""
        expires = dt.datetime.now(dt.UTC) + CHANNEL_LIFETIME
        with self.provider.api(grant, "calendar") as service:
            # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/watch
            # Reference: https://developers.google.com/workspace/calendar/api/guides/push
            answer = execute(service.events().watch(calendarId=CALENDAR, body={
                "id": uuid.uuid4().hex, "type": "web_hook", "address": notification_url, "token": client_state,
                "expiration": str(int(expires.timestamp() * 1000)),
            }))
        if renew is not None:
            self.stop_watch(grant, renew)
        return CalendarWatch(id=str(answer["id"]), resource_id=str(answer["resourceId"]),
                             expires_at=dt.datetime.fromtimestamp(int(answer["expiration"]) / 1000, dt.UTC))

    def stop_watch(self, grant: Grant, watch: CalendarWatch) -> None:
        with self.provider.api(grant, "calendar") as service:
            try:
                with google_errors():
                    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/channels/stop
                    execute(service.channels().stop(body={"id": watch.id, "resourceId": watch.resource_id}))
            except NotFound:
                pass  # expired or stopped already


# -- mapping ---------------------------------------------------------------------------------


def _zone(name: object) -> str | None:
    if not name or not isinstance(name, str):
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def parse_google_time(value: object) -> tuple[dt.datetime | None, bool]:
    """An EventDateTime as (aware UTC datetime, is a date). Dates become midnight UTC (floating).
    (None, False) when there is none; ``UnreadableEvent`` when there is one that cannot be read."""
    if not value:
        return None, False
    if not isinstance(value, Mapping):
        raise UnreadableEvent("its time is not a date or a date and time")
    try:
        if value.get("date"):
            return dt.datetime.combine(dt.date.fromisoformat(str(value["date"])), dt.time(), dt.UTC), True
        if not value.get("dateTime"):
            return None, False
        moment = dt.datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnreadableEvent("its time could not be read") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(_zone(value.get("timeZone")) or "UTC"))
    return moment.astimezone(dt.UTC), False


def event_from_google(item: object, calendar_zone: str) -> CalendarEvent:
    """An Events resource as a CalendarEvent. Raises ``UnreadableEvent`` for an item that cannot be
    one (no id, no start: Google's Tasks-backed items have none); other oddities are read as well
    as they can be and noted in ``problems``."""
    if not isinstance(item, Mapping):
        raise UnreadableEvent("it is not an event")
    event_id = required_id(item)
    problems: list[str] = []
    try:
        start, all_day = parse_google_time(item.get("start"))
    except UnreadableEvent as exc:
        raise UnreadableEvent("its start time could not be read") from exc
    if start is None:
        raise UnreadableEvent("it has no start time")
    try:
        end, _ = parse_google_time(item.get("end"))
    except UnreadableEvent:
        end = None
    if end is None or end < start:
        problems.append("The event had no valid end; it is shown ending when it starts.")
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta())
    start_value = item.get("start")
    zone_name = (_zone(start_value.get("timeZone")) if isinstance(start_value, Mapping) else None) \
        or _zone(calendar_zone) or "UTC"
    description = description_text(text(item.get("description")))
    visibility = text(item.get("visibility")) or "default"
    try:
        original, _ = parse_google_time(item.get("originalStartTime"))
    except UnreadableEvent:
        original = None
        problems.append("Its original start in the series could not be read.")
    attendees = item.get("attendees") or []
    if not isinstance(attendees, list):
        attendees = []
        problems.append("Its attendees could not be read.")
    people = [a for a in attendees if isinstance(a, Mapping) and text(a.get("email"))]
    organizer = item.get("organizer")
    organizer = organizer if isinstance(organizer, Mapping) else {}
    own = next((a for a in people if a.get("self") is True), None)
    return CalendarEvent(
        id=event_id,
        start=start,
        end=end,
        title=text(item.get("summary")),
        location=text(item.get("location")),
        notes=description.strip(),
        time_zone=zone_name,
        all_day=all_day,
        sensitivity=visibility if visibility in ("private", "confidential") else "normal",
        show_as="free" if item.get("transparency") == "transparent" else "busy",
        # The organiser is on the list too (organizer: true) when there are guests; shown apart.
        attendees=tuple(Attendee(address=text(a.get("email")), name=text(a.get("displayName")),
                                 response=google_response(a.get("responseStatus")))
                        for a in people if a.get("organizer") is not True),
        ical_uid=text(item.get("iCalUID")),
        series_id=text(item.get("recurringEventId")),
        original_start=original,
        etag=text(item.get("etag")),
        client_id=text(item.get("id")),  # Aspire's creates choose the event's id (create_event)
        problems=tuple(problems),
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (organizer.self)
        is_organizer=not organizer or organizer.get("self") is True,
        organizer=Attendee(address=text(organizer.get("email")), name=text(organizer.get("displayName")))
        if text(organizer.get("email")) else None,
        my_response=google_response(own.get("responseStatus")) if own else "",
    )


def google_response(status: object) -> str:
    """A Google responseStatus as one of ``providers.calendar.RESPONSES``, or "" (needsAction)."""
    value = text(status)
    return value if value in RESPONSES else ""


def send_updates(draft: EventDraft) -> str:
    """Google mails guests only when told to: ``all`` when the user chose to invite, else ``none``.
    Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert (sendUpdates)"""
    return "all" if draft.invite and draft.attendees else "none"


def google_event(draft: EventDraft) -> dict[str, Any]:
    if draft.all_day:
        start: dict[str, str] = {"date": draft.start.date().isoformat()}
        end: dict[str, str] = {"date": draft.end.date().isoformat()}
    else:
        zone = zoneinfo.ZoneInfo(draft.time_zone)
        start = {"dateTime": draft.start.astimezone(zone).isoformat(), "timeZone": draft.time_zone}
        end = {"dateTime": draft.end.astimezone(zone).isoformat(), "timeZone": draft.time_zone}
    return {
        "summary": draft.title,
        "description": draft.notes,
        "location": draft.location,
        "start": start,
        "end": end,
        "visibility": "private" if draft.private else "default",
        "transparency": "transparent" if draft.show_as == "free" else "opaque",
        "attendees": [{"email": a.address, **({"displayName": a.name} if a.name else {})} for a in draft.attendees]
        if draft.invite else [],
    }


def description_text(description: str) -> str:
    """A description as Aspire's notes. Google Calendar's editor writes HTML (a line break as
    ``<br>``); other apps write plain text, which may hold a ``<`` of its own ("Dana <dana@…>"):
    only text with the editor's tags is read as HTML, its own line ends kept as Calendar shows them
    and its links' addresses kept (notes are text: "Join <https://meet.google.com/…>")."""
    if not EDITOR_TAG.search(description):
        return description
    return html_to_text(description.replace("\r\n", "\n").replace("\n", "<br>"), links=True)
