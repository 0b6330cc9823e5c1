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
import html
import uuid
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import nh3

from ..base import Grant
from ..calendar import Attendee, CalendarChanges, CalendarEvent, CalendarWatch, EventDraft
from ..errors import Conflict, NotFound, SyncStateExpired
from .transport import execute, google_errors

if TYPE_CHECKING:
    from .provider import GoogleProvider

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
        changed: list[CalendarEvent] = []
        removed: list[str] = []
        requests = 0
        sync_token = ""
        page_token: str | None = None
        with self.provider.api(grant, "calendar") as service:
            while True:
                # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list
                body = execute(service.events().list(**params, **({"pageToken": page_token} if page_token else {})))
                requests += 1
                calendar_zone = str(body.get("timeZone") or "UTC")
                for item in body.get("items", []):
                    if item.get("status") == "cancelled":
                        removed.append(str(item["id"]))
                    else:
                        changed.append(event_from_google(item, calendar_zone))
                page_token = body.get("nextPageToken")
                if not page_token:
                    sync_token = str(body.get("nextSyncToken") or "")
                    break
        return CalendarChanges(changed=tuple(changed), removed=tuple(removed), cursor=sync_token,
                               full=not cursor, requests=requests)

    def create_event(self, grant: Grant, draft: EventDraft, *, client_id: str) -> CalendarEvent:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
        # The id is ours (base32hex; a UUID's hex digits are in that alphabet), so inserting again
        # after a lost answer is a 409 and the first event is read back instead of made twice.
        with self.provider.api(grant, "calendar") as service:
            try:
                with google_errors():
                    created = execute(service.events().insert(calendarId=CALENDAR,
                                                              body={**google_event(draft), "id": client_id}))
            except Conflict:
                # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/get
                created = execute(service.events().get(calendarId=CALENDAR, eventId=client_id))
        return event_from_google(created, draft.time_zone)

    def update_event(self, grant: Grant, event_id: str, draft: EventDraft, *, etag: str) -> CalendarEvent:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/patch
        # Reference: https://developers.google.com/workspace/calendar/api/guides/version-resources
        with self.provider.api(grant, "calendar") as service:
            request = service.events().patch(calendarId=CALENDAR, eventId=event_id, body=google_event(draft))
            if etag:
                request.headers["If-Match"] = etag
            try:
                with google_errors():
                    updated = execute(request)
            except SyncStateExpired as exc:  # 410 "deleted": the event was deleted in Google
                raise NotFound(exc.detail) from exc
        return event_from_google(updated, draft.time_zone)

    def delete_event(self, grant: Grant, event_id: str, *, etag: str) -> None:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/delete
        with self.provider.api(grant, "calendar") as service:
            request = service.events().delete(calendarId=CALENDAR, eventId=event_id)
            if etag:
                request.headers["If-Match"] = etag
            try:
                with google_errors():
                    execute(request)
            except (NotFound, SyncStateExpired):
                pass  # gone already (404), or deleted before (410 "deleted")


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


def _zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def parse_google_time(value: Mapping[str, Any] | None) -> tuple[dt.datetime | None, bool]:
    """An EventDateTime as (aware UTC datetime, is a date). Dates become midnight UTC (floating)."""
    if not value:
        return None, False
    if value.get("date"):
        return dt.datetime.combine(dt.date.fromisoformat(str(value["date"])), dt.time(), dt.UTC), True
    if not value.get("dateTime"):
        return None, False
    moment = dt.datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(_zone(value.get("timeZone")) or "UTC"))
    return moment.astimezone(dt.UTC), False


def event_from_google(item: Mapping[str, Any], calendar_zone: str) -> CalendarEvent:
    problems: list[str] = []
    start, all_day = parse_google_time(item.get("start"))
    if start is None:
        raise ValueError(f"event {item.get('id')} has no start")
    end, _ = parse_google_time(item.get("end"))
    if end is None or end < start:
        problems.append("The event had no valid end; it is shown ending when it starts.")
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta())
    zone_name = _zone((item.get("start") or {}).get("timeZone")) or _zone(calendar_zone) or "UTC"
    description = str(item.get("description") or "")
    if "<" in description:
        description = html.unescape(nh3.clean(description, tags=set()))
    visibility = str(item.get("visibility") or "default")
    original, _ = parse_google_time(item.get("originalStartTime"))
    return CalendarEvent(
        id=str(item["id"]),
        start=start,
        end=end,
        title=str(item.get("summary") or ""),
        location=str(item.get("location") or ""),
        notes=description.strip(),
        time_zone=zone_name,
        all_day=all_day,
        sensitivity=visibility if visibility in ("private", "confidential") else "normal",
        show_as="free" if item.get("transparency") == "transparent" else "busy",
        attendees=tuple(Attendee(address=str(a.get("email", "")), name=str(a.get("displayName") or ""))
                        for a in item.get("attendees") or [] if isinstance(a, Mapping)),
        ical_uid=str(item.get("iCalUID") or ""),
        series_id=str(item.get("recurringEventId") or ""),
        original_start=original,
        etag=str(item.get("etag") or ""),
        client_id=str(item["id"]),  # Aspire's creates choose the event's id (create_event)
        problems=tuple(problems),
    )


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
        "attendees": [{"email": a.address, **({"displayName": a.name} if a.name else {})} for a in draft.attendees],
    }
