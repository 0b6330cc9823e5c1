"""Google Calendar API v3: the primary calendar's events, recurrence, sync tokens and watch channels.

Per-account state lives in ``account["data"]["google"]["calendar"]``: ``events`` (id -> {"resource":
the Event as Google returns it, "seq": the store sequence of its last change}), ``sync_floor`` (sync
tokens minted before it answer 410) and ``channels`` (watch channels by id). Series masters and
exceptions (moved or cancelled instances, stored under the instance id) are separate entries, as in
Google; plain instances are computed from the master's recurrence when listed.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .common import (
    ApiError,
    Json,
    api_route,
    b64url,
    b64url_decode,
    bad_request,
    bool_param,
    int_param,
    json_body,
    now_ms,
    ok,
    rfc3339,
)
from .recurrence import Series, instance_start, instant, zone

if TYPE_CHECKING:
    from . import GoogleEmulator

EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
INSTANCE_ID = re.compile(r"(?P<series>[a-v0-9]{5,1024})_(?P<start>\d{8}(T\d{6}Z)?)")
DEFAULT_CHANNEL_TTL_MS = 7 * 24 * 3600 * 1000
MAX_CHANNEL_TTL_MS = 30 * 24 * 3600 * 1000
SYNC_TOKEN_EXCLUSIVE = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
                        "timeMin", "timeMax", "updatedMin")
WRITABLE = ("summary", "description", "location", "start", "end", "recurrence", "visibility", "transparency",
            "status", "attendees", "colorId", "reminders", "extendedProperties", "guestsCanModify",
            "guestsCanInviteOthers", "guestsCanSeeOtherGuests", "anyoneCanAddSelf", "source", "conferenceData",
            "sequence")
UTC = dt.UTC


def gone() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def missing() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


class Calendar:
    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emulator = emulator
        self.store = emulator.store

    def routes(self) -> list[BaseRoute]:
        calendar = "/calendar/v3/calendars/{calendarId}"
        e = self.emulator

        def route(path: str, handler: Any, method: str, operation: str) -> BaseRoute:
            return api_route(e, path, handler, methods=[method], operation=operation)

        return [
            route(calendar, self.get_calendar, "GET", "calendar.calendars.get"),
            route(calendar + "/events", self.list_events, "GET", "calendar.events.list"),
            route(calendar + "/events", self.insert_event, "POST", "calendar.events.insert"),
            route(calendar + "/events/watch", self.watch, "POST", "calendar.events.watch"),
            route(calendar + "/events/{eventId}", self.get_event, "GET", "calendar.events.get"),
            route(calendar + "/events/{eventId}", self.patch_event, "PATCH", "calendar.events.patch"),
            route(calendar + "/events/{eventId}", self.update_event, "PUT", "calendar.events.update"),
            route(calendar + "/events/{eventId}", self.delete_event_handler, "DELETE", "calendar.events.delete"),
            route(calendar + "/events/{eventId}/instances", self.list_instances, "GET", "calendar.events.instances"),
            route("/calendar/v3/channels/stop", self.stop_channel, "POST", "calendar.channels.stop"),
            Route("/_sandbox/google/{email}/calendar-channels", self.control_channels, methods=["GET"]),
        ]

    # -- state -----------------------------------------------------------------------------

    def setup(self, account: Json) -> None:
        account["data"]["google"]["calendar"] = {
            "events": {}, "sync_floor": self.store.next_sequence(), "channels": {}, "time_zone": "UTC",
        }

    @staticmethod
    def cal(account: Json) -> Json:
        return account["data"]["google"]["calendar"]

    def calendar_for(self, request: Request, account: Json) -> Json:
        if request.path_params["calendarId"] not in ("primary", account["email"]):
            raise missing()
        return self.cal(account)

    def insert(self, account: Json, body: Json) -> Json:
        cal = self.cal(account)
        # Google's own ids use the base32hex alphabet (a-v, 0-9), the same one clients must use.
        event_id = body.get("id") or base64.b32hexencode(secrets.token_bytes(15)).decode().lower()
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in cal["events"]:
            # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        created = rfc3339(dt.datetime.now(UTC))
        owner = {"email": account["email"], "displayName": account["display_name"], "self": True}
        resource: Json = {
            "kind": "calendar#event", "id": event_id, "status": "confirmed",
            "htmlLink": f"{self.emulator.sandbox.base_url}/calendar/event?eid={b64url(event_id.encode()).rstrip('=')}",
            "created": created, "creator": dict(owner), "organizer": dict(owner),
            "iCalUID": body.get("iCalUID") or f"{event_id}@google.com", "sequence": 0,
            "reminders": {"useDefault": True}, "eventType": "default",
        }
        self._apply(resource, body, replace=True)
        self._save(cal, resource)
        self._notify(account)
        return resource

    def _apply(self, resource: Json, body: Json, *, replace: bool) -> None:
        """Validate and copy writable fields; ``replace`` (insert/update) also drops absent ones."""
        if replace:
            for key in WRITABLE:
                if key not in body and key not in ("status", "sequence", "reminders"):
                    resource.pop(key, None)
        for key in WRITABLE:
            if key in body and key not in ("start", "end"):
                if body[key] is None:
                    resource.pop(key, None)
                else:
                    resource[key] = body[key]
        for key in ("start", "end"):
            if key in body:
                resource[key] = normalise_time(body[key], key)
        for key in ("start", "end"):
            if key not in resource:
                raise ApiError(400, "required", f"Missing {key} time.")
        if ("date" in resource["start"]) != ("date" in resource["end"]):
            raise bad_request("Start and end times must either both be date or both be dateTime.", "invalid")
        if instant(resource["end"]) < instant(resource["start"]):
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        check_fields(resource)
        if resource.get("recurrence"):
            if "dateTime" in resource["start"] and not resource["start"].get("timeZone"):
                raise bad_request("Missing time zone definition for start time.", "invalid")
            # Read and evaluated now, so a rule Google refuses is refused here and never fails a listing.
            Series(resource).check()
        for attendee in resource.get("attendees") or []:
            attendee.setdefault("responseStatus", "needsAction")
            if attendee.get("email", "").lower() == resource["organizer"]["email"]:
                attendee.update(organizer=True, self=True)

    def _save(self, cal: Json, resource: Json) -> None:
        seq = self.store.next_sequence()
        resource["etag"] = f'"{seq}"'
        resource["updated"] = rfc3339(dt.datetime.now(UTC))
        cal["events"][resource["id"]] = {"resource": resource, "seq": seq}

    def find(self, cal: Json, event_id: str) -> Json:
        """A stored event or exception, else the computed instance of a series, else 404."""
        entry = cal["events"].get(event_id)
        if entry is not None:
            return dict(entry["resource"])
        match = INSTANCE_ID.fullmatch(event_id)
        master = cal["events"].get(match["series"]) if match else None
        if master is None or master["resource"]["status"] == "cancelled" or not master["resource"].get("recurrence"):
            raise missing()
        series = Series(master["resource"])
        moment = instance_start(master["resource"]["id"], event_id)
        if moment is None or (moment.tzinfo is None) != series.all_day or not series.has(moment):
            raise missing()
        return series.instance(moment if series.all_day else moment.astimezone(series.zone))

    def change(self, account: Json, event_id: str, body: Json, *, replace: bool = False,
               if_match: str | None = None) -> Json:
        cal = self.cal(account)
        current = self.find(cal, event_id)
        if if_match and if_match != "*" and if_match != current["etag"]:
            # Reference: https://developers.google.com/workspace/calendar/api/guides/version-resources
            raise ApiError(412, "conditionNotMet", "Precondition Failed")
        if current["status"] == "cancelled" and body.get("status", "cancelled") == "cancelled":
            raise gone()
        if current.get("recurringEventId") and body.get("recurrence"):
            raise bad_request("An instance of a recurring event cannot have a recurrence.", "invalid")
        resource = json.loads(json.dumps(current))
        self._apply(resource, body, replace=replace)
        resource["sequence"] = current.get("sequence", 0) + 1
        if not current.get("recurringEventId") and (current.get("recurrence") or resource.get("recurrence")):
            self._reshape_series(cal, current, resource)
        self._save(cal, resource)
        self._notify(account)
        return resource

    def _reshape_series(self, cal: Json, before: Json, after: Json) -> None:
        """A series' rule or times changed. Its old exceptions no longer belong to it (a changed
        rule replaces them); an instance it no longer has is deleted, and stays as a cancelled
        instance so an incremental listing reports it: with a sync token "all events deleted since
        the previous list request will always be in the result set", and with singleEvents those
        are "single instances of deleted events".
        Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list (syncToken)
        Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (status)"""
        if before.get("recurrence") == after.get("recurrence") and (before["start"], before["end"]) == (
                after["start"], after["end"]):
            return
        exceptions = {r["id"]: r for r in (e["resource"] for e in cal["events"].values())
                      if r.get("recurringEventId") == before["id"]}
        if before.get("recurrence") == after.get("recurrence"):
            exceptions = {}  # new times, same rule: exceptions still stand where they are instances
        kept = {instance["id"] for _, instance in self._expand(after)} if after.get("recurrence") else set()
        dropped = {instance["id"]: instance["originalStartTime"]
                   for _, instance in (self._expand(before) if before.get("recurrence") else ())}
        dropped.update({r["id"]: r["originalStartTime"] for r in exceptions.values()})
        for exception_id in exceptions:
            del cal["events"][exception_id]
        for instance_id, original in dropped.items():
            if instance_id in kept:
                continue
            self._save(cal, {"kind": "calendar#event", "id": instance_id, "status": "cancelled",
                             "recurringEventId": before["id"], "originalStartTime": original})

    @staticmethod
    def _expand(master: Json) -> Iterator[tuple[dt.datetime, Json]]:
        """All of a series' instances, an open-ended one's as far as a listing without timeMax goes."""
        return Series(master).instances(None, None)

    def delete(self, account: Json, event_id: str, *, if_match: str | None = None) -> None:
        cal = self.cal(account)
        current = self.find(cal, event_id)
        if if_match and if_match != "*" and if_match != current["etag"]:
            raise ApiError(412, "conditionNotMet", "Precondition Failed")
        if current["status"] == "cancelled":
            raise gone()
        # Deleted events stay as "cancelled" tombstones so incremental sync can report them.
        current["status"] = "cancelled"
        self._save(cal, current)
        if not current.get("recurringEventId"):
            for other in list(cal["events"].values()):
                if other["resource"].get("recurringEventId") == event_id and other["resource"]["status"] != "cancelled":
                    exception = dict(other["resource"], status="cancelled")
                    self._save(cal, exception)
        self._notify(account)

    def replace_organizer(self, account: Json, event_id: str, organizer: Json, attendees: list[Json]) -> Json:
        """Make a stored event someone else's meeting that the account is a guest of (control API)."""
        cal = self.cal(account)
        resource = json.loads(json.dumps(self.find(cal, event_id)))
        resource["organizer"], resource["attendees"] = organizer, attendees
        self._save(cal, resource)
        return resource

    def put_raw(self, account: Json, item: Any) -> Any:
        """An event item served exactly as given, unchecked, in every listing (and incremental
        listings after it): the odd data a real calendar holds, such as Google's Tasks-backed
        items, which have no start, and the product must survive."""
        cal = self.cal(account)
        seq = self.store.next_sequence()
        cal["events"][f"raw~{seq}"] = {"resource": item, "seq": seq, "raw": True}
        self._notify(account)
        return item

    def expire(self, account: Json) -> None:
        self.cal(account)["sync_floor"] = self.store.next_sequence()

    # -- push -------------------------------------------------------------------------------

    def _notify(self, account: Json) -> None:
        cal = self.cal(account)
        for channel in list(cal["channels"].values()):
            if channel["expiration"] < now_ms():
                del cal["channels"][channel["id"]]
                continue
            self._push(account, channel, "exists")

    def _push(self, account: Json, channel: Json, state: str) -> None:
        # Reference: https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications
        number = channel["message_number"]
        channel["message_number"] += 1
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Expiration": email.utils.formatdate(channel["expiration"] / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
        }
        if channel.get("token"):
            headers["X-Goog-Channel-Token"] = channel["token"]
        self.emulator.sandbox.push(channel["address"], headers=headers, account=account["email"],
                                   kind=f"calendar.push.{state}")

    # -- handlers ---------------------------------------------------------------------------

    async def get_calendar(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/calendars/get
        cal = self.calendar_for(request, account)
        return ok({"kind": "calendar#calendar", "etag": f'"{cal["sync_floor"]}"', "id": account["email"],
                   "summary": account["email"], "timeZone": cal["time_zone"]})

    # -- what Google mails guests ---------------------------------------------------------
    # Google mails guests only when the request says so: sendUpdates=all (every guest) or
    # externalOnly (guests without a Google Calendar); none, or no sendUpdates, mails nobody
    # (the deprecated sendNotifications=true means all).
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert (sendUpdates)
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/patch (sendUpdates)
    # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/delete (sendUpdates)
    def count_mail(self, request: Request, account: Json, resource: Json, kind: str) -> None:
        send = request.query_params.get("sendUpdates") or (
            "all" if request.query_params.get("sendNotifications") == "true" else "none")
        if send not in ("all", "externalOnly", "none"):
            raise bad_request(f"Invalid value for sendUpdates: {send}", "invalid")
        if send == "none" or resource.get("organizer", {}).get("self") is not True:
            return
        guests = [a["email"].lower() for a in resource.get("attendees") or []
                  if not a.get("organizer") and not a.get("self")]
        if send == "externalOnly":
            guests = [g for g in guests if self.store.find_account("google", g) is None]
        self.store.count_meeting_mail(account, kind, len(guests))

    def respond(self, account: Json, event_id: str, attendee: str, response: str) -> Json:
        """A guest's answer reaching the organiser's event: the guest's responseStatus changes and
        the event gets a new etag, so an incremental listing brings it."""
        cal = self.cal(account)
        current = self.find(cal, event_id)
        resource = json.loads(json.dumps(current))
        for guest in resource.get("attendees") or []:
            if guest.get("email", "").lower() == attendee:
                guest["responseStatus"] = "needsAction" if response == "none" else response
                break
        else:
            raise ApiError(404, "notFound", f"{attendee} is not a guest of this event")
        self._save(cal, resource)
        self._notify(account)
        return resource

    async def insert_event(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
        self.calendar_for(request, account)
        created = self.insert(account, await json_body(request))
        self.count_mail(request, account, created, "invitation")
        return ok(created)

    async def get_event(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/get
        cal = self.calendar_for(request, account)
        return ok(self.find(cal, request.path_params["eventId"]))

    async def patch_event(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/patch
        self.calendar_for(request, account)
        changed = self.change(account, request.path_params["eventId"], await json_body(request),
                              if_match=request.headers.get("if-match"))
        self.count_mail(request, account, changed, "update")
        return ok(changed)

    async def update_event(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/update
        self.calendar_for(request, account)
        changed = self.change(account, request.path_params["eventId"], await json_body(request), replace=True,
                              if_match=request.headers.get("if-match"))
        self.count_mail(request, account, changed, "update")
        return ok(changed)

    async def delete_event_handler(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/delete
        cal = self.calendar_for(request, account)
        event_id = request.path_params["eventId"]
        self.delete(account, event_id, if_match=request.headers.get("if-match"))
        self.count_mail(request, account, self.find(cal, event_id), "cancellation")
        return Response(status_code=204)

    async def list_instances(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/instances
        cal = self.calendar_for(request, account)
        master = cal["events"].get(request.path_params["eventId"])
        if master is None or not master["resource"].get("recurrence"):
            raise missing()
        if master["resource"]["status"] == "cancelled":
            raise gone()
        low, high = time_param(request, "timeMin"), time_param(request, "timeMax")
        show_deleted = bool_param(request, "showDeleted")
        items = [item for item in self._instances(cal, master["resource"], low, high)
                 if show_deleted or item["status"] != "cancelled"]
        page, next_token = self._page(request, items, 250, {})
        body = self._list_body(account, cal, page)
        if next_token:
            body["nextPageToken"] = next_token
        return ok(body)

    async def list_events(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/list
        # and https://developers.google.com/workspace/calendar/api/guides/sync
        cal = self.calendar_for(request, account)
        params = request.query_params
        single = bool_param(request, "singleEvents")
        order_by = params.get("orderBy")
        if order_by not in (None, "startTime", "updated"):
            raise bad_request(f"Invalid value for: orderBy ({order_by})", "invalidParameter")
        if order_by == "startTime" and not single:
            raise bad_request("The requested ordering is not available for the particular query.", "badRequest")
        state = self._page_state(params.get("pageToken"))
        sync_token = params.get("syncToken")
        if sync_token is not None:
            if any(params.get(name) for name in SYNC_TOKEN_EXCLUSIVE):
                raise bad_request("Sync token cannot be used with other request restrictions.", "invalid")
            since = self._sync_seq(cal, sync_token)
        else:
            since = None
        # The token that ends this listing is fixed on its first page, so changes made while the
        # client pages through are picked up by the next incremental sync.
        sync_seq = state.get("sync", self.store.sequence)
        low, high = time_param(request, "timeMin"), time_param(request, "timeMax")
        updated_min = time_param(request, "updatedMin")
        show_deleted = bool_param(request, "showDeleted") or since is not None
        items: list[Json] = []
        raw_items: list[Any] = []  # the control API's raw items: in every listing, unfiltered, last
        for entry in cal["events"].values():
            resource = entry["resource"]
            if since is not None and entry["seq"] <= since:
                continue
            if entry.get("raw"):
                raw_items.append(resource)
                continue
            if updated_min and parse_instant(resource["updated"]) < updated_min:
                continue
            if single and resource.get("recurrence"):
                if resource["status"] == "cancelled":
                    if show_deleted:
                        items.append(resource)
                    continue
                items.extend(i for i in self._instances(cal, resource, low, high, stored=since is None)
                             if show_deleted or i["status"] != "cancelled")
                continue
            if resource["status"] == "cancelled" and not show_deleted and not (
                    not single and self._series_alive(cal, resource)):
                # Google lists a live series' cancelled instances even without showDeleted when
                # singleEvents is off: that is how a client learns which occurrences were removed.
                continue
            if single and resource.get("recurringEventId") and since is None:
                continue  # already placed by its series' expansion
            if not overlaps(resource, low, high):
                continue
            items.append(resource)
        # A series and its changed exceptions can both yield the same instance in an incremental sync.
        items = list({item["id"]: item for item in items}.values())
        if params.get("iCalUID"):
            items = [item for item in items if item.get("iCalUID") == params["iCalUID"]]
        for word in params.get("q", "").lower().split():
            items = [item for item in items if word in searchable_text(item)]
        for scope in ("private", "shared"):
            for constraint in params.getlist(f"{scope}ExtendedProperty"):
                name, _, value = constraint.partition("=")
                items = [item for item in items
                         if item.get("extendedProperties", {}).get(scope, {}).get(name) == value]
        if order_by == "startTime":
            items.sort(key=lambda item: (instant(item["start"]), item["id"]))
        elif order_by == "updated":
            items.sort(key=lambda item: item["updated"])
        page, next_token = self._page(request, items + raw_items, 250, {"sync": sync_seq})
        body = self._list_body(account, cal, page)
        if next_token:
            body["nextPageToken"] = next_token
        else:
            body["nextSyncToken"] = b64url(json.dumps({"seq": sync_seq}).encode()).rstrip("=")
        return ok(body)

    @staticmethod
    def _series_alive(cal: Json, resource: Json) -> bool:
        master = cal["events"].get(resource.get("recurringEventId"))
        return master is not None and master["resource"]["status"] != "cancelled"

    def _instances(self, cal: Json, master: Json, low: dt.datetime | None, high: dt.datetime | None,
                   *, stored: bool = True) -> Iterator[Json]:
        """The series' instances in the window, with exceptions in place of the instances they replace."""
        exceptions = {r["id"]: r for r in (e["resource"] for e in cal["events"].values())
                      if r.get("recurringEventId") == master["id"]}
        for _, instance in Series(master).instances(low, high):
            exception = exceptions.get(instance["id"])
            if exception is None:
                yield instance
            elif overlaps(exception, low, high) or exception["status"] == "cancelled":
                yield exception
        if not stored:
            return
        # A moved instance still belongs in the window it was moved into.
        for exception in exceptions.values():
            original = instant(exception["originalStartTime"])
            outside = (low is not None and original < low) or (high is not None and original >= high)
            if outside and exception["status"] != "cancelled" and overlaps(exception, low, high):
                yield exception

    def _list_body(self, account: Json, cal: Json, items: list[Json]) -> Json:
        return {
            "kind": "calendar#events", "etag": f'"{self.store.sequence}"', "summary": account["email"],
            "description": "", "updated": rfc3339(dt.datetime.now(UTC)), "timeZone": cal["time_zone"],
            "accessRole": "owner", "defaultReminders": [], "items": items,
        }

    def _page(self, request: Request, items: list[Json], default: int, state: Json) -> tuple[list[Json], str | None]:
        size = int_param(request, "maxResults", default, high=2500)
        offset = self._page_state(request.query_params.get("pageToken")).get("offset", 0)
        page = items[offset: offset + size]
        if offset + size < len(items):
            return page, b64url(json.dumps({**state, "offset": offset + size}).encode()).rstrip("=")
        return page, None

    @staticmethod
    def _page_state(token: str | None) -> Json:
        if not token:
            return {}
        try:
            state = json.loads(b64url_decode(token))
        except ValueError as exc:
            raise bad_request("Invalid page token value.", "invalid") from exc
        if not isinstance(state, dict):
            raise bad_request("Invalid page token value.", "invalid")
        return state

    @staticmethod
    def _sync_seq(cal: Json, token: str) -> int:
        try:
            seq = json.loads(b64url_decode(token))["seq"]
        except (ValueError, KeyError, TypeError):
            seq = None
        if not isinstance(seq, int) or seq < cal["sync_floor"]:
            # Reference: https://developers.google.com/workspace/calendar/api/guides/sync#full_sync_required_by_server
            raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
        return seq

    async def control_channels(self, request: Request) -> Response:
        """The calendar's live notification channels (control API): what still calls the app."""
        account = self.store.find_account("google", request.path_params["email"])
        if account is None:
            raise LookupError(f"no google account {request.path_params['email']}")
        live = [c for c in self.cal(account)["channels"].values() if c["expiration"] >= now_ms()]
        return JSONResponse({"channels": live})

    async def watch(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events/watch
        self.calendar_for(request, account)
        body = await json_body(request)
        channel_id, address = body.get("id"), body.get("address", "")
        if not channel_id or body.get("type") not in ("web_hook", "webhook"):
            raise bad_request("Channel id and type web_hook are required.", "required")
        parsed = urllib.parse.urlsplit(address)
        # Google requires HTTPS; a loopback http address is accepted because only the local app can
        # be reached from here, and a development server rarely has a certificate.
        if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname in ("localhost", "127.0.0.1")):
            raise bad_request(f"WebHook callback must be HTTPS: {address}", "push.webhookUrlNotHttps")
        cal = self.cal(account)
        if channel_id in cal["channels"]:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        requested = body.get("expiration")
        expiration = now_ms() + DEFAULT_CHANNEL_TTL_MS
        if requested:
            expiration = min(int(requested), now_ms() + MAX_CHANNEL_TTL_MS)
        resource_id = secrets.token_urlsafe(20)
        channel = {
            "kind": "api#channel", "id": channel_id, "resourceId": resource_id,
            "resourceUri": f"{self.emulator.sandbox.base_url}/calendar/v3/calendars/"
                           f"{request.path_params['calendarId']}/events?alt=json",
            "expiration": expiration, "address": address, "token": body.get("token"), "message_number": 1,
        }
        cal["channels"][channel_id] = channel
        self._push(account, channel, "sync")
        response = {"kind": "api#channel", "id": channel_id, "resourceId": resource_id,
                    "resourceUri": channel["resourceUri"], "expiration": str(expiration)}
        if channel["token"]:
            response["token"] = channel["token"]
        return ok(response)

    async def stop_channel(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/channels/stop
        body = await json_body(request)
        cal = self.cal(account)
        channel = cal["channels"].get(body.get("id"))
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            raise ApiError(404, "notFound", f"Channel '{body.get('id')}' not found for project")
        del cal["channels"][channel["id"]]
        return Response(status_code=204)


# -- times and recurrence ---------------------------------------------------------------------

TEXT_FIELDS = ("summary", "description", "location", "colorId", "status")
ENUMS = {"visibility": ("default", "public", "private", "confidential"), "transparency": ("opaque", "transparent"),
         "status": ("confirmed", "tentative", "cancelled")}
ATTENDEE_RESPONSES = ("needsAction", "declined", "tentative", "accepted")
REMINDER_METHODS = ("email", "popup")
# Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (reminders.overrides,
# EventReminder.minutes)
MAX_REMINDER_OVERRIDES = 5
MAX_REMINDER_MINUTES = 40320


def invalid_value(field: str) -> ApiError:
    return bad_request(f"Invalid value for: {field}", "invalid")


def check_fields(resource: Json) -> None:
    """The writable fields' types and documented values and limits, so odd input is a 400 and
    never a stored event the sandbox cannot serve."""
    for field in TEXT_FIELDS:
        if field in resource and not isinstance(resource[field], str):
            raise invalid_value(field)
    for field, allowed in ENUMS.items():
        if field in resource and resource[field] not in allowed:
            raise invalid_value(field)
    attendees = resource.get("attendees")
    if attendees is not None:
        if not isinstance(attendees, list):
            raise invalid_value("attendees")
        for attendee in attendees:
            if not isinstance(attendee, dict) or not isinstance(attendee.get("email"), str) \
                    or "@" not in attendee["email"]:
                # Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (attendees)
                raise bad_request("Invalid attendee email.", "invalid")
            if attendee.get("responseStatus", "needsAction") not in ATTENDEE_RESPONSES:
                raise invalid_value("attendees.responseStatus")
    reminders = resource.get("reminders")
    if reminders is not None:
        if not isinstance(reminders, dict) or not isinstance(reminders.get("useDefault", False), bool) \
                or not isinstance(reminders.get("overrides", []), list):
            raise invalid_value("reminders")
        overrides = reminders.get("overrides", [])
        if len(overrides) > MAX_REMINDER_OVERRIDES:
            raise bad_request(f"The maximum number of override reminders is {MAX_REMINDER_OVERRIDES}.", "invalid")
        for reminder in overrides:
            if not isinstance(reminder, dict) or reminder.get("method") not in REMINDER_METHODS \
                    or not isinstance(reminder.get("minutes"), int) \
                    or not 0 <= reminder["minutes"] <= MAX_REMINDER_MINUTES:
                raise invalid_value("reminders.overrides")
    properties = resource.get("extendedProperties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise invalid_value("extendedProperties")
        for scope, values in properties.items():
            if scope not in ("private", "shared") or not isinstance(values, dict) \
                    or not all(isinstance(value, str) for value in values.values()):
                raise invalid_value("extendedProperties")


def normalise_time(value: Any, which: str) -> Json:
    """An EventDateTime as Google echoes it: a dateTime gets its UTC offset written out."""
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise ApiError(400, "required", f"Missing {which} time.")
    if value.get("date"):
        try:
            dt.date.fromisoformat(value["date"])
        except ValueError as exc:
            raise bad_request(f"Invalid {which} date.", "invalid") from exc
        return {"date": value["date"]}
    try:
        moment = dt.datetime.fromisoformat(value["dateTime"])
    except ValueError as exc:
        raise bad_request(f"Invalid {which} time.", "invalid") from exc
    time_zone = value.get("timeZone")
    if moment.tzinfo is None:
        if not time_zone:
            raise bad_request(f"Missing time zone definition for {which} time.", "invalid")
        moment = moment.replace(tzinfo=zone(time_zone))
    elif time_zone:
        moment = moment.astimezone(zone(time_zone))
    result = {"dateTime": moment.isoformat()}
    if time_zone:
        result["timeZone"] = time_zone
    return result


def parse_instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def time_param(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise bad_request(f"Bad Request: invalid {name}", "badRequest") from exc
    if moment.tzinfo is None:
        raise bad_request(f"Bad Request: {name} must have a time zone offset", "badRequest")
    return moment.astimezone(UTC)


def searchable_text(resource: Json) -> str:
    """What a free-text ``q`` matches: summary, description, location and attendees."""
    attendees = " ".join(f"{a.get('email', '')} {a.get('displayName', '')}" for a in resource.get("attendees") or [])
    fields = (resource.get("summary"), resource.get("description"), resource.get("location"), attendees)
    return " ".join(field for field in fields if field).lower()


def overlaps(resource: Json, low: dt.datetime | None, high: dt.datetime | None) -> bool:
    if "start" not in resource:
        return True
    if low is not None and instant(resource["end"]) <= low:
        return False
    return not (high is not None and instant(resource["start"]) >= high)
