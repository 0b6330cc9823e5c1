"""The Google emulator: OAuth 2.0, Gmail v1 and Calendar v3 on the sandbox host.

See sandbox/emulator.py for the interface it implements and API.md beside this file for what is
emulated. Per-account state lives in ``account["data"]["google"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..emulator import control_errors
from ..event_spec import check_event_spec
from .batch import Batch
from .calendar import Calendar
from .common import ApiError, Json
from .gmail import Gmail
from .oauth import GoogleOAuth
from .pubsub import PushSigner
from .quota import UserQuota

if TYPE_CHECKING:
    from ..app import Sandbox


class GoogleEmulator:
    name = "google"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.quota = UserQuota(sandbox)
        self.oauth = GoogleOAuth(self)
        self.gmail = Gmail(self)
        self.calendar = Calendar(self)
        api_routes = self.gmail.routes() + self.calendar.routes()
        self.batch = Batch(self, api_routes)
        self.push_signer = PushSigner()
        self._routes = self.oauth.routes() + api_routes + self.batch.routes() + self.push_signer.routes()

    def routes(self) -> list[BaseRoute]:
        return self._routes

    def setup_account(self, account: Json) -> None:
        account["data"][self.name] = {}
        self.gmail.setup(account)
        self.calendar.setup(account)

    def put_message(self, account: Json, *, folder: str, raw: bytes) -> Json:
        box = self.gmail.box(account)
        label = self.gmail.find_label(box, folder)
        if label is None:
            raise LookupError(f"no label {folder!r} in {account['email']}")
        label_ids = [label["id"]]
        if label["id"] == "INBOX":
            label_ids.append("UNREAD")
        message = self.gmail.add_message(account, raw, label_ids)
        return {"id": message["id"], "threadId": message["threadId"], "labelIds": message["labelIds"]}

    def move_message(self, account: Json, message_id: str, *, folder: str) -> Json:
        box = self.gmail.box(account)
        message = box["messages"].get(message_id)
        label = self.gmail.find_label(box, folder)
        if message is None or label is None:
            raise LookupError(f"no message {message_id!r} or label {folder!r} in {account['email']}")
        self.gmail.change_labels(account, message, add=[label["id"]], remove=["INBOX"])
        return {"id": message["id"], "labelIds": message["labelIds"]}

    def mailbox(self, account: Json) -> Json:
        box = self.gmail.box(account)
        folders = {label_id: {"id": label_id, "name": label["name"], "messages": []}
                   for label_id, label in box["labels"].items()}
        for message in box["messages"].values():
            summary = {"id": message["id"], "subject": message["summary"]["subject"],
                       "internet_message_id": message["summary"]["message_id"], "thread_id": message["threadId"]}
            for label_id in message["labelIds"]:
                folders[label_id]["messages"].append(summary)
        return {"folders": list(folders.values())}

    def put_event(self, account: Json, spec: Json) -> Json:
        check_event_spec(spec)
        with control_errors(ApiError):
            if "raw" in spec:
                return self.calendar.put_raw(account, spec["raw"])
            created = self.calendar.insert(account, event_body(spec))
            if spec.get("organizer") and spec["organizer"].lower() != account["email"]:
                # Someone else's meeting the account was invited to: its copy in the account's calendar.
                answer = spec.get("my_response") or "none"
                me = {"email": account["email"], "self": True,
                      "responseStatus": "needsAction" if answer == "none" else answer}
                guests = [g for g in created.get("attendees") or [] if g["email"].lower() != account["email"]]
                return self.calendar.replace_organizer(account, created["id"], {"email": spec["organizer"]},
                                                       [me, *guests])
            return created

    def change_event(self, account: Json, event_id: str, changes: Json) -> Json:
        check_event_spec(changes, partial=True)
        with control_errors(ApiError):
            current = self.calendar.find(self.calendar.cal(account), event_id)
            # New times without a zone stay in the event's own zone.
            if "time_zone" not in changes and current["start"].get("timeZone"):
                changes = {**changes, "time_zone": current["start"]["timeZone"]}
            return self.calendar.change(account, event_id, event_body(changes))

    def delete_event(self, account: Json, event_id: str) -> None:
        with control_errors(ApiError):
            self.calendar.delete(account, event_id)

    def respond(self, account: Json, event_id: str, attendee: str, response: str) -> Json:
        with control_errors(ApiError):
            return self.calendar.respond(account, event_id, attendee, response)

    def events(self, account: Json) -> list[Json]:
        entries = list(self.calendar.cal(account)["events"].values())
        stored = (entry["resource"] for entry in entries if not entry.get("raw"))
        # Deleted series and single events are gone for the user; cancelled instances are part of a series.
        listed = [r for r in stored if r["status"] != "cancelled" or r.get("recurringEventId")]
        return listed + [entry["resource"] for entry in entries if entry.get("raw")]

    def expire_sync_state(self, account: Json) -> None:
        self.gmail.expire(account)
        self.calendar.expire(account)


def event_body(spec: Json) -> Json:
    """The neutral control-API event spec (sandbox/emulator.py) as a Calendar API Event body."""
    body: Json = {}
    for neutral, google in (("subject", "summary"), ("body", "description"), ("location", "location")):
        if neutral in spec:
            body[google] = spec[neutral]
    all_day = bool(spec.get("all_day"))
    for key in ("start", "end"):
        if key in spec:
            if all_day:
                body[key] = {"date": spec[key]}
            else:
                body[key] = {"dateTime": spec[key], "timeZone": spec.get("time_zone") or "UTC"}
    if "rrule" in spec:
        body["recurrence"] = [f"RRULE:{spec['rrule']}"] if spec["rrule"] else None
    if "private" in spec:
        body["visibility"] = "private" if spec["private"] else "default"
    if "show_as" in spec:
        body["transparency"] = "transparent" if spec["show_as"] == "free" else "opaque"
    if "attendees" in spec:
        body["attendees"] = [{"email": address} for address in spec["attendees"]]
    return body
