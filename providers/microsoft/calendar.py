"""Outlook calendars through Microsoft Graph: ``calendarView/delta`` for reading, events for writing.

``calendarView`` (rather than ``/me/events``) returns every instance of a series in the window, with
moved and cancelled exceptions applied by Exchange, so nothing here expands recurrence rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import nh3
from tzlocal.windows_tz import win_tz

from ..base import Grant
from ..calendar import Attendee, CalendarChanges, CalendarEvent, CalendarWatch, EventDraft
from ..errors import NotFound
from . import subscriptions
from .graph import IMMUTABLE_IDS, GraphClient, segment

if TYPE_CHECKING:
    from .provider import MicrosoftProvider

PAGE_SIZE = 100
# Times in UTC (the event's own zone comes separately, in originalStartTimeZone), immutable ids,
# and bigger pages than Graph's default of 10.
# Reference: https://learn.microsoft.com/en-us/graph/api/user-list-events#support-various-time-zones
# Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
PREFER = f'{IMMUTABLE_IDS}, outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}'
GRAPH_DATETIME = "%Y-%m-%dT%H:%M:%S"


class MicrosoftCalendar:
    def __init__(self, provider: MicrosoftProvider) -> None:
        self.provider = provider

    def _graph(self, grant: Grant) -> GraphClient:
        return GraphClient(self.provider.session, self.provider.config.graph_url, grant.access_token)

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
        changed: list[CalendarEvent] = []
        removed: list[str] = []
        requests = 0
        delta_link = ""
        while link:
            body = graph._json(graph.request("GET", link, params=params, headers=headers))
            requests += 1
            params = None
            for item in body.get("value", []):
                if "@removed" in item or item.get("isCancelled"):
                    removed.append(str(item["id"]))
                elif item.get("type") != "seriesMaster":
                    changed.append(event_from_graph(item))
            link = body.get("@odata.nextLink")
            delta_link = str(body.get("@odata.deltaLink") or delta_link)
        return CalendarChanges(changed=tuple(changed), removed=tuple(removed), cursor=delta_link,
                               full=not cursor, requests=requests)

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

    def delete_event(self, grant: Grant, event_id: str, *, etag: str) -> None:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-delete
        headers = {"If-Match": etag} if etag else {}
        with contextlib.suppress(NotFound):  # already deleted
            self._graph(grant).request("DELETE", f"/me/events/{segment(event_id)}", headers=headers).close()


    def watch(self, grant: Grant, *, notification_url: str, lifecycle_url: str, client_state: str,
              renew: CalendarWatch | None = None) -> CalendarWatch:
        return subscriptions.watch(self._graph(grant), resource="me/events", change_type="created,updated,deleted",
                                   notification_url=notification_url, lifecycle_url=lifecycle_url,
                                   client_state=client_state, renew=renew)

    def stop_watch(self, grant: Grant, watch: CalendarWatch) -> None:
        subscriptions.stop(self._graph(grant), watch.id)


# -- mapping ---------------------------------------------------------------------------------


def iana_zone(name: str | None) -> str | None:
    """An IANA zone for a Graph zone name: Windows names (``Pacific Standard Time``), as Outlook
    writes them, through the CLDR table; IANA names as they are; None when unknown."""
    if not name:
        return None
    candidate = win_tz.get(name, name)
    try:
        zoneinfo.ZoneInfo(candidate)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def parse_graph_time(value: Mapping[str, Any] | None) -> dt.datetime | None:
    """A dateTimeTimeZone as an aware UTC datetime. Graph writes seven fractional digits, which
    ``fromisoformat`` does not take, so the fraction is dropped (Outlook keeps whole seconds)."""
    if not value or not value.get("dateTime"):
        return None
    text = str(value["dateTime"]).split(".")[0].removesuffix("Z")
    wall = dt.datetime.fromisoformat(text)
    zone_name = iana_zone(str(value.get("timeZone") or "UTC")) or "UTC"
    return wall.replace(tzinfo=zoneinfo.ZoneInfo(zone_name)).astimezone(dt.UTC)


def _floating_date(value: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(str(value["dateTime"])[:10]), dt.time(), dt.UTC)


def plain_text(body: Mapping[str, Any] | None) -> str:
    if not body:
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType", "")).lower() == "html":
        content = html.unescape(nh3.clean(content, tags=set()))
    return content.strip()


def event_from_graph(item: Mapping[str, Any]) -> CalendarEvent:
    problems: list[str] = []
    all_day = bool(item.get("isAllDay"))
    start = parse_graph_time(item.get("start"))
    if start is None:
        raise ValueError(f"event {item.get('id')} has no start")
    end = parse_graph_time(item.get("end"))
    if all_day:
        # Floating dates: midnight in whatever zone Graph labelled them with, so the date is read
        # from the text rather than converted.
        start = _floating_date(item["start"])
        end = _floating_date(item["end"]) if (item.get("end") or {}).get("dateTime") else None
    if end is None or end < start:
        problems.append("The event had no valid end; it is shown ending when it starts.")
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta())
    raw_zone = item.get("originalStartTimeZone")
    zone_name = iana_zone(raw_zone)
    if zone_name is None:
        if raw_zone:
            problems.append(f"Its time zone “{raw_zone}” is not one Aspire knows; times are kept in UTC.")
        zone_name = "UTC"
    attendees = tuple(
        Attendee(address=str(a.get("emailAddress", {}).get("address", "")),
                 name=str(a.get("emailAddress", {}).get("name") or ""))
        for a in item.get("attendees") or [] if isinstance(a, Mapping)
    )
    original_start = item.get("originalStart")
    return CalendarEvent(
        id=str(item["id"]),
        start=start,
        end=end,
        title=str(item.get("subject") or ""),
        location=str((item.get("location") or {}).get("displayName") or ""),
        notes=plain_text(item.get("body")),
        time_zone=zone_name,
        all_day=all_day,
        sensitivity=str(item.get("sensitivity") or "normal").lower(),
        show_as=str(item.get("showAs") or "busy"),
        attendees=attendees,
        ical_uid=str(item.get("iCalUId") or ""),
        series_id=str(item.get("seriesMasterId") or ""),
        original_start=dt.datetime.fromisoformat(str(original_start).replace("Z", "+00:00")) if original_start
        else None,
        etag=str(item.get("@odata.etag") or item.get("changeKey") or ""),
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (transactionId)
        client_id=str(item.get("transactionId") or ""),
        problems=tuple(problems),
    )


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
        "attendees": [{"emailAddress": {"address": a.address, "name": a.name}, "type": "required"}
                      for a in draft.attendees],
    }


def _iso_z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
