"""Outlook calendar through Microsoft Graph: events, series with exceptions, calendarView and its delta.

State per account:
    events:         event id -> a single event or series master, Graph-shaped, plus ``exceptions``:
                    {occurrence key: {"cancelled": bool, "changes": {...}, "changeKey": str}}
    event_tx:       transactionId -> event id (a retried create returns the first event)
    calendar_delta: delta state id -> {"epoch", "start", "end", "seen": {instance id: change key},
                                       "changed": [ids], "removed": [ids]}

An occurrence's id is ``<master id>_<original start, UTC>``; it stays the same when the occurrence is
changed into an exception, as in Exchange.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .common import (
    GraphError,
    Json,
    apply_select,
    bad_request,
    context,
    data_of,
    etag,
    graph,
    graph_json,
    graph_url,
    iso_z,
    json_body,
    new_change_key,
    new_graph_id,
    not_found,
    offset_page,
    page_size,
    parse_iso,
    prefer,
    selected_fields,
    utc_now,
)
from .recurrence import (
    expand,
    floating_time,
    graph_time,
    localize,
    normalise_recurrence,
    rrule_to_pattern,
    series_rule,
    wall_time,
    zone,
)

if TYPE_CHECKING:
    from ..app import Sandbox
    from .subscriptions import Subscriptions

UPDATABLE = ("subject", "body", "start", "end", "location", "attendees", "sensitivity", "showAs", "isAllDay",
             "recurrence", "categories", "importance", "isReminderOn", "reminderMinutesBeforeStart")
# Fields an exception may override; the rest always follow the series master.
EXCEPTION_FIELDS = ("subject", "body", "start", "end", "location", "attendees", "sensitivity", "showAs",
                    "categories", "importance", "isReminderOn", "reminderMinutesBeforeStart")
MAX_DELTA_STATES = 200
RAW = "raw~"  # delta bookkeeping keys of the control API's raw event items
EVENT_TYPE = "#microsoft.graph.event"
STALE_ETAG = ("The send or update operation could not be performed because the change key passed in the "
              "request does not match the current change key for the item.")


# The control API's answers as Graph writes them (responseStatus.response).
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/responsestatus
GRAPH_RESPONSES = {"accepted": "accepted", "declined": "declined", "tentative": "tentativelyAccepted", "none": "none"}
NOT_RESPONDED = {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
# The most attendees an event can have in Exchange Online.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/event
MAX_ATTENDEES = 500
MAX_DURATION = dt.timedelta(days=5 * 365 + 1)
ADDRESS_FIELDS = ("street", "city", "state", "countryOrRegion", "postalCode")
# Which JSON type each writable field takes: anything else fails to deserialize, as on Graph.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "subject": (str,), "body": (dict,), "start": (dict,), "end": (dict,), "location": (dict,),
    "attendees": (list,), "sensitivity": (str,), "showAs": (str,), "isAllDay": (bool,), "categories": (list,),
    "importance": (str,), "isReminderOn": (bool,), "reminderMinutesBeforeStart": (int,), "recurrence": (dict,),
}


def check_types(fields: Json) -> None:
    for name, value in fields.items():
        if value is None and name in ("body", "location", "recurrence"):
            continue
        if not isinstance(value, FIELD_TYPES[name]) or (isinstance(value, bool) and bool not in FIELD_TYPES[name]):
            raise GraphError(400, "RequestBodyRead", f"The property '{name}' has a value of the wrong type.")
    if not all(isinstance(category, str) for category in fields.get("categories") or []):
        raise GraphError(400, "RequestBodyRead", "The property 'categories' must be a collection of strings.")


def location_of(value: Json) -> Json:
    """A location as Graph keeps it: its display name and, when given, its street address."""
    location: Json = {"displayName": str(value.get("displayName") or "")}
    address = value.get("address")
    if address:
        if not isinstance(address, dict) or not all(isinstance(address.get(k, ""), str) for k in ADDRESS_FIELDS):
            raise GraphError(400, "RequestBodyRead", "The property 'address' must be a physicalAddress.")
        location["address"] = {k: address.get(k, "") for k in ADDRESS_FIELDS}
    return location


def occurrence_key(start: dt.datetime) -> str:
    return start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def key_to_time(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class View:
    """How one request wants events rendered: times in ``zone``, the body as ``body_type`` (None:
    as it was written, for the control API)."""

    zone: str
    body_type: str | None = None


STORED = View("UTC")


class _TextOfHtml(HTMLParser):
    """The text of an HTML body, blocks on lines of their own, as Exchange's text rendition gives it."""

    BLOCKS = frozenset({"p", "div", "li", "tr", "table", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5",
                        "h6", "pre", "body"})
    UNSHOWN = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.UNSHOWN:
            self.hidden += 1
        elif tag == "br":
            self.text += "\n"
        elif tag in self.BLOCKS:
            self.end_line()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.UNSHOWN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.end_line()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.text += data.replace("\r", "").replace("\n", " ").replace("\xa0", " ")

    def end_line(self) -> None:
        if self.text and not self.text.endswith("\n"):
            self.text += "\n"


def html_as_text(content: str) -> str:
    """Exchange's text rendition, with Windows line ends as Graph serves text bodies."""
    parser = _TextOfHtml()
    parser.feed(content)
    parser.close()
    return parser.text.strip("\n").replace("\n", "\r\n")


def text_as_html(content: str) -> str:
    """Text as the HTML document Exchange (and Outlook, writing notes) makes of it: a block a line."""
    lines = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in content.split("\n")) if content else ""
    return ('<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
            f"<body>{lines}</body></html>")


class Calendar:
    def __init__(self, sandbox: Sandbox, subscriptions: Subscriptions) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.subscriptions = subscriptions

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1.0/me/calendar", self.calendar, methods=["GET"]),
            Route("/v1.0/me/calendarView", self.calendar_view, methods=["GET"]),
            Route("/v1.0/me/calendarView/delta", self.delta, methods=["GET"]),
            Route("/v1.0/me/events", self.events_collection, methods=["GET", "POST"]),
            Route("/v1.0/me/events/{event_id}", self.event, methods=["GET", "PATCH", "DELETE"]),
            Route("/v1.0/me/events/{event_id}/instances", self.instances, methods=["GET"]),
        ]

    def setup(self, account: Json) -> None:
        data_of(account).update({
            "calendar": {"id": new_graph_id("AAMkADCal"), "name": "Calendar", "changeKey": new_change_key()},
            "events": {}, "event_tx": {}, "calendar_delta": {}, "calendar_epoch": 0,
        })

    # -- the model -----------------------------------------------------------------------
    def master_of(self, data: Json, event_id: str) -> tuple[Json, str | None]:
        """The stored event for an id, and the occurrence key if the id names an occurrence."""
        master_id, _, key = event_id.partition("_")
        event = data["events"].get(master_id)
        if event is None:
            raise not_found("The specified object was not found in the store.")
        if key:
            if event["recurrence"] is None or not self.is_occurrence(event, key):
                raise not_found("The specified object was not found in the store.")
            return event, key
        return event, None

    def is_occurrence(self, event: Json, key: str) -> bool:
        wall = key_to_time(key).astimezone(zone(self.series_zone(event))).replace(tzinfo=None)
        return bool(expand(event["recurrence"], wall_time(event["start"]), wall, wall))

    @staticmethod
    def series_zone(event: Json) -> str:
        """The zone a series repeats in; all-day series repeat on dates, kept as UTC midnights."""
        return "UTC" if event["isAllDay"] else str(event["start"]["timeZone"])

    def occurrence_times(self, event: Json, key: str) -> tuple[dt.datetime, dt.datetime]:
        """Where an occurrence is, taking its exception's changes (if any) into account."""
        start = key_to_time(key)
        first_start, first_end = self.bounds(event)
        end = start + (first_end - first_start)
        exception = event["exceptions"].get(key)
        if exception is not None:
            changed = self.bounds({**event, **exception["changes"]})
            start = changed[0] if "start" in exception["changes"] else start
            end = changed[1] if "end" in exception["changes"] else end
        return start, end

    def bounds(self, event: Json) -> tuple[dt.datetime, dt.datetime]:
        """UTC start and end of a stored event (all-day events count from UTC midnight)."""
        zone_name = "UTC" if event["isAllDay"] else event["start"]["timeZone"]
        end_zone = "UTC" if event["isAllDay"] else event["end"]["timeZone"]
        return localize(wall_time(event["start"]), zone_name), localize(wall_time(event["end"]), end_zone)

    def instances_between(self, event: Json, low: dt.datetime, high: dt.datetime) -> list[Json]:
        """The event's instances overlapping [low, high): internal records for rendering."""
        start, end = self.bounds(event)
        if event["recurrence"] is None:
            return [{"event": event, "key": None, "start": start, "end": end}] if start < high and end > low else []
        zone_name = self.series_zone(event)
        first_wall = wall_time(event["start"])
        duration = wall_time(event["end"]) - first_wall
        local = zone(zone_name)
        # Widen the wall-clock window by the event's length and a day for zone offsets.
        margin = duration + dt.timedelta(days=1)
        low_wall = low.astimezone(local).replace(tzinfo=None) - margin
        high_wall = high.astimezone(local).replace(tzinfo=None) + dt.timedelta(days=1)
        found = []
        for wall in expand(event["recurrence"], first_wall, low_wall, high_wall):
            occurrence_start = localize(wall, zone_name)
            key = occurrence_key(occurrence_start)
            if key in event["exceptions"]:
                continue  # exceptions are placed below, by their own (possibly moved) times
            occurrence_end = localize(wall + duration, zone_name)
            if occurrence_start < high and occurrence_end > low:
                found.append({"event": event, "key": key, "start": occurrence_start, "end": occurrence_end})
        for key, exception in event["exceptions"].items():
            if exception["cancelled"]:
                continue
            exception_start, exception_end = self.occurrence_times(event, key)
            if exception_start < high and exception_end > low:
                found.append({"event": event, "key": key, "start": exception_start, "end": exception_end})
        return found

    def window_instances(self, data: Json, low: dt.datetime, high: dt.datetime) -> list[Json]:
        found = [i for event in data["events"].values() for i in self.instances_between(event, low, high)]
        found.sort(key=lambda i: (i["start"], i["event"]["id"], i["key"] or ""))
        return found

    def instance_id(self, instance: Json) -> str:
        event = instance["event"]
        return event["id"] if instance["key"] is None else f"{event['id']}_{instance['key']}"

    def instance_change_key(self, instance: Json) -> str:
        event = instance["event"]
        exception = event["exceptions"].get(instance["key"]) if instance["key"] else None
        if exception is None:
            return str(event["changeKey"])
        # An exception changes when it does, and when the series fields it inherits do.
        return hashlib.sha256(f"{event['changeKey']}:{exception['changeKey']}".encode()).hexdigest()[:16]

    # -- rendering -----------------------------------------------------------------------
    def view(self, request: Request) -> View:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-events#support-various-time-zones
        # Without the Prefer header Graph answers in UTC; the event's own zone is in originalStartTimeZone.
        preferences = prefer(request)
        name = preferences.get("outlook.timezone", "UTC")
        zone(name)
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-get (Prefer: outlook.body-content-type)
        # The body comes as HTML, however it was written, unless the request prefers text.
        wanted = preferences.get("outlook.body-content-type", "html").lower()
        return View(name, body_type="text" if wanted == "text" else "html")

    @staticmethod
    def body_json(body: Json, view: View) -> Json:
        """An event's body as the request wants it, converted as Exchange converts it: text as HTML
        with each line a block, HTML as its text with blocks on their own lines."""
        written = str(body.get("contentType", "text")).lower()
        content = str(body.get("content", ""))
        if view.body_type is None or view.body_type == written:
            return body
        if view.body_type == "html":
            return {"contentType": "html", "content": text_as_html(content)}
        return {"contentType": "text", "content": html_as_text(content)}

    def times(self, event: Json, start: dt.datetime, end: dt.datetime, view: View) -> Json:
        zone_name = view.zone
        if event["isAllDay"]:
            return {"start": floating_time(start.replace(tzinfo=None), zone_name),
                    "end": floating_time(end.replace(tzinfo=None), zone_name)}
        return {"start": graph_time(start, zone_name), "end": graph_time(end, zone_name)}

    def event_json(self, event: Json, view: View) -> Json:
        """A single instance or a series master."""
        start, end = self.bounds(event)
        body = self.common_json(event, event, event["id"], str(event["changeKey"]), view)
        body.update(self.times(event, start, end, view))
        body.update({
            "type": "seriesMaster" if event["recurrence"] else "singleInstance",
            "seriesMasterId": None, "originalStart": None, "recurrence": event["recurrence"],
            "iCalUId": event["iCalUId"], "occurrenceId": None,
        })
        return body

    def instance_json(self, instance: Json, view: View) -> Json:
        event = instance["event"]
        if instance["key"] is None:
            return self.event_json(event, view)
        exception = event["exceptions"].get(instance["key"])
        fields = {**event, **exception["changes"]} if exception else event
        instance_id = self.instance_id(instance)
        body = self.common_json(event, fields, instance_id, self.instance_change_key(instance), view)
        body.update(self.times(event, instance["start"], instance["end"], view))
        body.update({
            "type": "exception" if exception else "occurrence",
            "seriesMasterId": event["id"],
            "originalStart": iso_z(key_to_time(instance["key"])),
            "recurrence": None,
            # Each instance of a series has its own iCalUId in Graph.
            "iCalUId": event["iCalUId"] + hashlib.sha256(instance["key"].encode()).hexdigest()[:16].upper(),
            "occurrenceId": self.occurrence_id(event, instance["key"]),
        })
        return body

    def occurrence_id(self, event: Json, key: str) -> str:
        """``OID.{seriesMasterId}.{the occurrence's original start date}``, the date in the range's
        recurrenceTimeZone.
        Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (occurrenceId)"""
        recurrence_zone = event["recurrence"]["range"].get("recurrenceTimeZone") or self.series_zone(event)
        day = key_to_time(key).astimezone(zone(self.series_zone(event) if event["isAllDay"] else recurrence_zone))
        return f"OID.{event['id']}.{day.date().isoformat()}"

    def common_json(self, event: Json, fields: Json, event_id: str, change_key: str, view: View) -> Json:
        content = fields["body"].get("content", "")
        return {
            "@odata.etag": etag(change_key),
            "id": event_id,
            "createdDateTime": event["createdDateTime"],
            "lastModifiedDateTime": event["lastModifiedDateTime"],
            "changeKey": change_key,
            "categories": fields.get("categories", []),
            "transactionId": event.get("transactionId"),
            "originalStartTimeZone": event["start"]["timeZone"],
            "originalEndTimeZone": event["end"]["timeZone"],
            "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
            "isReminderOn": fields.get("isReminderOn", True),
            "hasAttachments": False,
            "subject": fields["subject"],
            "bodyPreview": " ".join(content.split())[:255],
            "importance": fields.get("importance", "normal"),
            "sensitivity": fields["sensitivity"],
            "isAllDay": event["isAllDay"],
            "isCancelled": False,
            "isOrganizer": self.organised_by_owner(event),
            "isDraft": False,
            "responseRequested": True,
            "showAs": fields["showAs"],
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}"
                       "&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            # The sandbox makes no online meetings (Teams): these are Graph's values for an event without one.
            "isOnlineMeeting": False, "onlineMeetingProvider": "unknown", "onlineMeeting": None,
            "allowNewTimeProposals": True, "hideAttendees": False,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
            if self.organised_by_owner(event) else event.get("my_status") or NOT_RESPONDED,
            "body": self.body_json(fields["body"], view),
            **self.locations_json(fields["location"]),
            "attendees": fields["attendees"],
            "organizer": event["organizer"],
        }

    @staticmethod
    def organised_by_owner(event: Json) -> bool:
        return bool(event.get("owner_organises", True))

    # -- what Graph mails attendees ----------------------------------------------------------
    # Graph sends invitations itself when the organiser creates an event with attendees, an update
    # when it changes one (only to changed attendees when only the attendees changed), and a
    # cancellation when it deletes one. There is no switch to turn that off.
    # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-update (attendees property and meeting updates)
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-delete
    MEETING_FIELDS = ("subject", "body", "start", "end", "location", "isAllDay")

    @staticmethod
    def addresses(item: Json) -> set[str]:
        return {str(a["emailAddress"]["address"]).lower() for a in item.get("attendees") or []}

    def count_update(self, account: Json, before: Json, after: Json, patch: Json) -> None:
        if not after.get("isOrganizer"):
            return
        added = self.addresses(after) - self.addresses(before)
        if set(patch) <= {"attendees"}:
            self.sandbox.store.count_meeting_mail(account, "update", len(added))
        elif added or any(before.get(name) != after.get(name) for name in self.MEETING_FIELDS):
            self.sandbox.store.count_meeting_mail(account, "update", len(self.addresses(after)))

    def respond(self, account: Json, event_id: str, attendee: str, response: str) -> Json:
        """An attendee's answer reaching the organiser's event: its attendee's status changes, and
        so does the event (a new changeKey), as Exchange records it."""
        event, key = self.master_of(data_of(account), event_id)
        if key is not None:
            raise ValueError("answer the series, not one occurrence")
        for person in event["attendees"]:
            if person["emailAddress"]["address"].lower() == attendee:
                person["status"] = {"response": GRAPH_RESPONSES[response], "time": iso_z(utc_now())}
                break
        else:
            raise LookupError(f"{attendee} is not an attendee of this event")
        self.touch(event)
        self.subscriptions.event_changed(account, event["id"], event["changeKey"], "updated")
        return self.event_json(event, STORED)

    @staticmethod
    def locations_json(location: Json) -> Json:
        """``location`` and ``locations`` as Graph renders a display name and maybe an address."""
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events (Response 1)
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/location
        name = location.get("displayName", "")
        address = {"address": location["address"]} if location.get("address") else {}
        if not name:
            return {"location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown", **address},
                    "locations": []}
        return {"location": {"displayName": name, "locationType": "default", "uniqueId": name,
                             "uniqueIdType": "private", **address},
                "locations": [{"displayName": name, "locationType": "default", "uniqueIdType": "unknown", **address}]}

    # -- writing -------------------------------------------------------------------------
    def normalise(self, account: Json, spec: Json, *, existing: Json | None = None) -> Json:
        """Validate a Graph event (or a PATCH of one) and fill Graph's defaults."""
        fields = {k: spec[k] for k in UPDATABLE if k in spec}
        check_types(fields)
        if "body" in fields:
            body = fields["body"] or {}
            fields["body"] = {"contentType": "html" if str(body.get("contentType", "")).lower() == "html" else "text",
                              "content": str(body.get("content") or "")}
        if "location" in fields:
            fields["location"] = location_of(fields["location"] or {})
        for name in ("start", "end"):
            if name in fields:
                value = fields[name]
                zone_name = value.get("timeZone") or "UTC"
                zone(zone_name)
                fields[name] = {"dateTime": wall_time(value).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                                "timeZone": zone_name}
        if fields.get("sensitivity", "normal") not in ("normal", "personal", "private", "confidential"):
            raise bad_request("Invalid sensitivity value.", "ErrorInvalidRequest")
        if fields.get("showAs", "busy") not in ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"):
            raise bad_request("Invalid showAs value.", "ErrorInvalidRequest")
        if fields.get("importance", "normal") not in ("low", "normal", "high"):
            raise bad_request("Invalid importance value.", "ErrorInvalidRequest")
        merged = {**(existing or {}), **fields}
        if "start" not in merged or "end" not in merged:
            raise bad_request("Both start and end must be specified.", "ErrorInvalidRequest")
        start, end = self.bounds({**merged, "isAllDay": merged.get("isAllDay", False)})
        if end < start:
            raise GraphError(400, "ErrorCalendarEndDateIsEarlierThanStartDate",
                             "The end of the event must be after its start.")
        if end - start > MAX_DURATION:
            # Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
            raise GraphError(400, "ErrorCalendarDurationIsTooLong", "An event cannot last longer than 5 years.")
        if merged.get("isAllDay") and (wall_time(merged["start"]).time() != dt.time() or
                                       wall_time(merged["end"]).time() != dt.time()):
            raise bad_request("All-day events must start and end at midnight.", "ErrorPropertyValidationFailure")
        recurrence = fields.get("recurrence")
        if "recurrence" not in fields and "start" in fields and (existing or {}).get("recurrence"):
            # A series moved to another day starts its pattern from that day.
            recurrence = {**existing["recurrence"], "range": {  # type: ignore[index]
                **existing["recurrence"]["range"], "startDate": wall_time(merged["start"]).date().isoformat()}}  # type: ignore[index]
        if recurrence is not None:
            fields["recurrence"] = normalise_recurrence(recurrence, wall_time(merged["start"]),
                                                        str(merged["start"]["timeZone"]))
        return fields

    def create(self, account: Json, spec: Json) -> tuple[Json, bool]:
        """Create an event; returns (event, created) — a repeated transactionId finds the first one."""
        data = data_of(account)
        transaction_id = spec.get("transactionId")
        if transaction_id and transaction_id in data["event_tx"] and data["event_tx"][transaction_id] in data["events"]:
            return data["events"][data["event_tx"][transaction_id]], False
        fields = self.normalise(account, spec)
        stamp = iso_z(utc_now())
        event: Json = {
            "id": new_graph_id("AAMkADEvt"),
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "subject": "", "body": {"contentType": "text", "content": ""}, "location": {"displayName": ""},
            "attendees": [], "sensitivity": "normal", "showAs": "busy", "isAllDay": False, "recurrence": None,
            "categories": [], "transactionId": transaction_id, "createdDateTime": stamp, "lastModifiedDateTime": stamp,
            "organizer": {"emailAddress": {"name": account["display_name"], "address": account["email"]}},
            "changeKey": new_change_key(), "exceptions": {},
            **fields,
        }
        event["attendees"] = self.attendees(event["attendees"])
        data["events"][event["id"]] = event
        if transaction_id:
            data["event_tx"][transaction_id] = event["id"]
        self.subscriptions.event_changed(account, event["id"], event["changeKey"], "created")
        return event, True

    def update(self, account: Json, event_id: str, spec: Json, if_match: str | None = None) -> Json:
        data = data_of(account)
        event, key = self.master_of(data, event_id)
        if key is None:
            self.check_etag(if_match, str(event["changeKey"]))
            fields = self.normalise(account, spec, existing=event)
            if "attendees" in fields:
                fields["attendees"] = self.attendees(fields["attendees"])
            if any(name in fields and fields[name] != event[name] for name in ("recurrence", "start")) \
                    and event["recurrence"]:
                # Changing a series' pattern or start discards its exceptions, as Outlook does.
                event["exceptions"] = {}
            event.update(fields)
            self.touch(event)
            self.subscriptions.event_changed(account, event["id"], event["changeKey"], "updated")
            return event
        instance = {"event": event, "key": key}
        self.check_etag(if_match, self.instance_change_key(instance))
        exception = event["exceptions"].setdefault(key, {"cancelled": False, "changes": {}, "changeKey": ""})
        if exception["cancelled"]:
            raise not_found("The specified object was not found in the store.")
        changes = {k: v for k, v in spec.items() if k in EXCEPTION_FIELDS}
        current = {**event, **exception["changes"], "recurrence": None}
        fields = self.normalise(account, changes, existing=current)
        if "start" in fields:
            self.check_crossing(event, key, self.bounds({**current, **fields})[0])
        if "attendees" in fields:
            fields["attendees"] = self.attendees(fields["attendees"])
        exception["changes"].update(fields)
        exception["changeKey"] = new_change_key()
        event["lastModifiedDateTime"] = iso_z(utc_now())
        self.subscriptions.event_changed(account, self.instance_id(instance), exception["changeKey"], "updated")
        return event

    def check_crossing(self, event: Json, key: str, new_start: dt.datetime) -> None:
        """An occurrence cannot be moved to or before the day of the previous occurrence, nor to or
        after the day of the next one.
        Reference: https://learn.microsoft.com/en-us/graph/api/event-update (ErrorOccurrenceCrossingBoundary)"""
        zone_name = self.series_zone(event)
        local = zone(zone_name)
        rule = series_rule(event["recurrence"], wall_time(event["start"]))
        if rule is None:
            return
        original = key_to_time(key).astimezone(local).replace(tzinfo=None)
        day = new_start.astimezone(local).date()
        for neighbour, later in ((rule.before(original), False), (rule.after(original), True)):
            if neighbour is None:
                continue
            neighbour_key = occurrence_key(localize(neighbour, zone_name))
            exception = event["exceptions"].get(neighbour_key)
            if exception is not None and exception["cancelled"]:
                continue
            neighbour_day = self.occurrence_times(event, neighbour_key)[0].astimezone(local).date()
            if (day >= neighbour_day) if later else (day <= neighbour_day):
                raise bad_request("Modified occurrence is crossing or overlapping adjacent occurrence.",
                                  "ErrorOccurrenceCrossingBoundary")

    def delete(self, account: Json, event_id: str, if_match: str | None = None) -> None:
        data = data_of(account)
        event, key = self.master_of(data, event_id)
        if key is None:
            self.check_etag(if_match, str(event["changeKey"]))
            del data["events"][event["id"]]
            self.subscriptions.event_changed(account, event["id"], event["changeKey"], "deleted")
            return
        instance = {"event": event, "key": key}
        self.check_etag(if_match, self.instance_change_key(instance))
        existing = event["exceptions"].get(key)
        if existing is not None and existing["cancelled"]:
            raise not_found("The specified object was not found in the store.")
        event["exceptions"][key] = {"cancelled": True, "changes": {}, "changeKey": new_change_key()}
        event["lastModifiedDateTime"] = iso_z(utc_now())
        self.subscriptions.event_changed(account, event_id, event["exceptions"][key]["changeKey"], "deleted")

    @staticmethod
    def check_etag(if_match: str | None, change_key: str) -> None:
        if if_match and if_match.strip() != "*" and if_match.strip() != etag(change_key):
            raise GraphError(412, "ErrorIrresolvableConflict", STALE_ETAG)

    @staticmethod
    def touch(event: Json) -> None:
        event["changeKey"] = new_change_key()
        event["lastModifiedDateTime"] = iso_z(utc_now())

    @staticmethod
    def attendees(attendees: Any) -> list[Json]:
        if not isinstance(attendees, list):
            raise bad_request("attendees must be a list.", "ErrorInvalidRequest")
        if len(attendees) > MAX_ATTENDEES:
            # The documented maximum; Graph's pages name no error code for it.
            raise bad_request(f"An event can have at most {MAX_ATTENDEES} attendees.", "ErrorInvalidRecipients")
        result = []
        for attendee in attendees:
            email = attendee.get("emailAddress") if isinstance(attendee, dict) else None
            address = email.get("address") if isinstance(email, dict) else None
            if not isinstance(address, str) or "@" not in address:
                raise bad_request("An attendee address is not valid.", "ErrorInvalidRecipients")
            kind = attendee.get("type") or "required"
            if kind not in ("required", "optional", "resource"):
                raise GraphError(400, "RequestBodyRead", f"Requested value '{kind}' was not found.")
            result.append({
                "type": kind,
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": str(email.get("name") or address), "address": address},  # type: ignore[union-attr]
            })
        return result

    # -- Graph handlers ------------------------------------------------------------------
    @graph("calendar.get")
    async def calendar(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/calendar-get
        calendar = data_of(account)["calendar"]
        return graph_json({
            "@odata.context": context(self.sandbox, "users('me')/calendars/$entity"),
            "id": calendar["id"], "name": calendar["name"], "changeKey": calendar["changeKey"],
            "canEdit": True, "canShare": True, "isDefaultCalendar": True, "color": "auto",
            "owner": {"name": account["display_name"], "address": account["email"]},
        })

    def window(self, request: Request) -> tuple[dt.datetime, dt.datetime]:
        raw_start, raw_end = request.query_params.get("startDateTime"), request.query_params.get("endDateTime")
        if not raw_start or not raw_end:
            raise bad_request("This request requires a time window specified by the query string parameters "
                              "StartDateTime and EndDateTime.", "ErrorInvalidParameter")
        start, end = parse_iso(raw_start), parse_iso(raw_end)
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        if end <= start:
            raise bad_request("The end of the time window must be after its start.", "ErrorInvalidParameter")
        return start, end

    @graph("calendarView.list")
    async def calendar_view(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-calendarview
        low, high = self.window(request)
        instances = self.window_instances(data_of(account), low, high)
        rendered = [self.instance_json(i, self.view(request)) for i in instances]
        return self.paged(request, rendered + list(data_of(account).get("raw_events", {}).values()),
                          "users('me')/calendarView")

    @graph("events.list")
    async def events_collection(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-events
        if request.method == "POST":
            # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-events
            request.scope["state"]["operation"] = "events.create"
            event, created = self.create(account, await json_body(request))
            if created:
                self.sandbox.store.count_meeting_mail(account, "invitation", len(event["attendees"]))
            return graph_json({"@odata.context": context(self.sandbox, "users('me')/events/$entity"),
                               **self.event_json(event, self.view(request))}, status=201)
        view = self.view(request)
        events = [self.event_json(e, view) for e in data_of(account)["events"].values()]
        return self.paged(request, events, "users('me')/events")

    def paged(self, request: Request, items: list[Json], context_path: str) -> Response:
        page, next_link = offset_page(request, items)
        fields = selected_fields(request)
        body: Json = {"@odata.context": context(self.sandbox, context_path),
                      "value": [apply_select(i, fields) if isinstance(i, dict) else i for i in page]}
        if next_link:
            body["@odata.nextLink"] = next_link
        return graph_json(body)

    @graph("events.get")
    async def event(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-get
        data = data_of(account)
        event_id = request.path_params["event_id"]
        if_match = request.headers.get("if-match")
        if request.method == "DELETE":
            # Reference: https://learn.microsoft.com/en-us/graph/api/event-delete
            request.scope["state"]["operation"] = "events.delete"
            doomed = self.try_render(data, event_id, STORED)
            self.delete(account, event_id, if_match)
            if doomed and doomed.get("isOrganizer"):
                self.sandbox.store.count_meeting_mail(account, "cancellation", len(self.addresses(doomed)))
            return Response(status_code=204)
        if request.method == "PATCH":
            # Reference: https://learn.microsoft.com/en-us/graph/api/event-update
            request.scope["state"]["operation"] = "events.update"
            patch = await json_body(request)
            before = self.try_render(data, event_id, STORED)
            self.update(account, event_id, patch, if_match)
            after = self.try_render(data, event_id, STORED)
            if before and after and isinstance(patch, dict):
                self.count_update(account, before, after, patch)
        return graph_json({"@odata.context": context(self.sandbox, "users('me')/events/$entity"),
                           **apply_select(self.render_id(data, event_id, self.view(request)),
                                          selected_fields(request))})

    def render_id(self, data: Json, event_id: str, view: View) -> Json:
        event, key = self.master_of(data, event_id)
        if key is None:
            return self.event_json(event, view)
        exception = event["exceptions"].get(key)
        if exception is not None and exception["cancelled"]:
            raise not_found("The specified object was not found in the store.")
        start, end = self.occurrence_times(event, key)
        return self.instance_json({"event": event, "key": key, "start": start, "end": end}, view)

    @graph("events.instances")
    async def instances(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-list-instances
        event, key = self.master_of(data_of(account), request.path_params["event_id"])
        low, high = self.window(request)
        found = sorted(self.instances_between(event, low, high), key=lambda i: i["start"]) if key is None else []
        view = self.view(request)
        return self.paged(request, [self.instance_json(i, view) for i in found],
                          f"users('me')/events('{event['id']}')/instances")

    # -- calendarView delta ----------------------------------------------------------------
    @graph("calendarView.delta")
    async def delta(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/event-delta
        # Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
        data = data_of(account)
        states = data["calendar_delta"]
        skip_token = request.query_params.get("$skiptoken")
        delta_token = request.query_params.get("$deltatoken")
        if skip_token:
            state_id, _, raw_offset = skip_token.partition("~")
            state = self.live_state(data, state_id)
            offset = int(raw_offset) if raw_offset.isdigit() else 0
        else:
            if delta_token:
                previous = self.live_state(data, delta_token)
                low, high = parse_iso(previous["start"]), parse_iso(previous["end"])
                seen = previous["seen"]
            else:
                low, high = self.window(request)
                seen = {}
            current = {self.instance_id(i): self.instance_change_key(i)
                       for i in self.window_instances(data, low, high)}
            for key, item in data.get("raw_events", {}).items():
                current[f"{RAW}{key}"] = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
            state = {
                "epoch": data["calendar_epoch"], "start": iso_z(low), "end": iso_z(high), "seen": current,
                "changed": [i for i, key in current.items() if seen.get(i) != key],
                "removed": [i for i in seen if i not in current],
            }
            state_id = secrets.token_urlsafe(18)
            states[state_id] = state
            while len(states) > MAX_DELTA_STATES:
                del states[next(iter(states))]
            offset = 0

        size = page_size(request)
        entries = state["changed"] + state["removed"]
        page_ids = entries[offset:offset + size]
        view = self.view(request)
        removed = set(state["removed"])
        page: list[Json] = []
        for instance_id in page_ids:
            if instance_id.startswith(RAW) and instance_id not in removed:
                item = data["raw_events"][instance_id.removeprefix(RAW)]
                page.append({"@odata.type": EVENT_TYPE, **item} if isinstance(item, dict) else item)
                continue
            rendered = None if instance_id in removed else self.try_render(data, instance_id, view)
            # Reference: https://learn.microsoft.com/en-us/graph/delta-query-events (each item is typed)
            page.append({"@odata.type": EVENT_TYPE, **rendered} if rendered else
                        {"@odata.type": EVENT_TYPE, "id": instance_id, "@removed": {"reason": "deleted"}})
        body: Json = {"@odata.context": context(self.sandbox, "Collection(event)"), "value": page}
        if offset + size < len(entries):
            body["@odata.nextLink"] = graph_url(self.sandbox,
                                                f"me/calendarView/delta?$skiptoken={state_id}~{offset + size}")
        else:
            body["@odata.deltaLink"] = graph_url(self.sandbox, f"me/calendarView/delta?$deltatoken={state_id}")
        return graph_json(body)

    def live_state(self, data: Json, state_id: str) -> Json:
        state = data["calendar_delta"].get(state_id)
        if state is None or state["epoch"] != data["calendar_epoch"]:
            raise GraphError(410, "SyncStateNotFound", "The sync state generation is invalid or has expired.")
        return state

    def try_render(self, data: Json, instance_id: str, view: View) -> Json | None:
        try:
            return self.render_id(data, instance_id, view)
        except GraphError:
            return None

    # -- control API -----------------------------------------------------------------------
    def neutral_to_graph(self, spec: Json, *, current: Json | None) -> Json:
        """The control API's neutral event spec (see sandbox/emulator.py), already checked by
        sandbox.event_spec, as a Graph event or, with ``current`` (the event changed), a patch."""
        zone_name = spec.get("time_zone") or (current["start"]["timeZone"] if current else "UTC")
        fields: Json = {}
        if "subject" in spec:
            fields["subject"] = spec["subject"]
        if "body" in spec:
            # Outlook writes an event's notes as HTML, whatever the user typed.
            fields["body"] = {"contentType": "html", "content": text_as_html(spec["body"])}
        if "location" in spec:
            fields["location"] = {"displayName": spec["location"]}
        if "all_day" in spec:
            fields["isAllDay"] = spec["all_day"]
        for name in ("start", "end"):
            if name in spec:
                text = spec[name]
                fields[name] = {"dateTime": text if "T" in text else text + "T00:00:00", "timeZone": zone_name}
        if "private" in spec:
            fields["sensitivity"] = "private" if spec["private"] else "normal"
        if "show_as" in spec:
            fields["showAs"] = spec["show_as"]
        if "attendees" in spec:
            fields["attendees"] = [{"emailAddress": {"address": a}, "type": "required"} for a in spec["attendees"]]
        if "rrule" in spec and not spec["rrule"]:
            fields["recurrence"] = None
        elif spec.get("rrule"):
            # A new rule for a series whose times do not change repeats from its current start.
            start = fields.get("start") or (current or {}).get("start")
            if start is None:
                raise ValueError("a recurring event needs a start")
            start_zone = str(start["timeZone"])
            fields["recurrence"] = rrule_to_pattern(spec["rrule"], wall_time(start), start_zone)
        return fields

    def put_event(self, account: Json, spec: Json) -> Json:
        if "raw" in spec:
            return self.put_raw(account, spec["raw"])
        event, _ = self.create(account, self.neutral_to_graph(spec, current=None))
        if spec.get("organizer") and spec["organizer"].lower() != account["email"]:
            # Someone else's meeting the account was invited to: its copy in the account's calendar.
            event["organizer"] = {"emailAddress": {"name": spec["organizer"], "address": spec["organizer"]}}
            event["owner_organises"] = False
            event["my_status"] = {"response": GRAPH_RESPONSES[spec.get("my_response") or "none"]
                                  if spec.get("my_response", "none") != "none" else "notResponded",
                                  "time": iso_z(utc_now())}
        return self.event_json(event, STORED)

    def put_raw(self, account: Json, item: Any) -> Any:
        """An event item served exactly as given, unchecked, in every calendar view and delta: the
        odd data a real calendar can hold and the product must survive."""
        raw = data_of(account).setdefault("raw_events", {})
        raw[str(len(raw) + 1)] = item
        return item

    def change_event(self, account: Json, event_id: str, changes: Json) -> Json:
        event, key = self.master_of(data_of(account), event_id)
        if key is not None and changes.get("rrule"):
            raise ValueError("an occurrence cannot have a recurrence rule of its own; change the series")
        current = {**event, **event["exceptions"][key]["changes"]} if key and key in event["exceptions"] else event
        self.update(account, event_id, self.neutral_to_graph(changes, current=current))
        return self.render_id(data_of(account), event_id, STORED)

    def delete_event(self, account: Json, event_id: str) -> None:
        self.delete(account, event_id)

    def events(self, account: Json) -> list[Json]:
        data = data_of(account)
        listed = []
        for event in data["events"].values():
            listed.append(self.event_json(event, STORED))
            for key, exception in event["exceptions"].items():
                if not exception["cancelled"]:
                    listed.append(self.render_id(data, f"{event['id']}_{key}", STORED))
        return listed + list(data.get("raw_events", {}).values())

    def expire_sync_state(self, account: Json) -> None:
        data = data_of(account)
        data["calendar_epoch"] += 1
        data["calendar_delta"].clear()
