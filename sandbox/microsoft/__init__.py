"""The Microsoft emulator: the identity platform and the parts of Graph v1.0 the product uses.

See sandbox/emulator.py for the interface it implements and API.md beside this file for what is emulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..emulator import control_errors
from ..event_spec import check_event_spec
from .calendar import Calendar
from .common import GraphError, Json, data_of
from .identity import Identity
from .mail import Mail
from .subscriptions import Subscriptions
from .users import Users

if TYPE_CHECKING:
    from ..app import Sandbox


class MicrosoftEmulator:
    name = "microsoft"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.identity = Identity(sandbox)
        self.subscriptions = Subscriptions(sandbox)
        self.mail = Mail(sandbox, self.subscriptions)
        self.subscriptions.mail = self.mail
        self.calendar = Calendar(sandbox, self.subscriptions)
        self.users = Users(sandbox, self.graph_routes)

    def graph_routes(self) -> list[BaseRoute]:
        return [*self.users.routes(), *self.mail.routes(), *self.calendar.routes(), *self.subscriptions.routes()]

    def routes(self) -> list[BaseRoute]:
        return [*self.graph_routes(), *self.mail.attachments.upload_routes(), *self.identity.routes()]

    def setup_account(self, account: Json) -> None:
        account["data"][self.name] = {}
        self.mail.setup(data_of(account))
        self.calendar.setup(account)
        self.subscriptions.setup(data_of(account))

    def put_message(self, account: Json, *, folder: str, raw: bytes) -> Json:
        return self.mail.put_message(account, folder=folder, raw=raw)

    def move_message(self, account: Json, message_id: str, *, folder: str) -> Json:
        data = data_of(account)
        record = self.mail.message_record(data, message_id)
        moved = self.mail.move_record(account, record, self.mail.folder_by_name(data, folder))
        return {"id": moved["id"], "immutable_id": moved["immutableId"]}

    def mailbox(self, account: Json) -> Json:
        return self.mail.mailbox(account)

    def put_event(self, account: Json, spec: Json) -> Json:
        check_event_spec(spec)
        with control_errors(GraphError):
            return self.calendar.put_event(account, spec)

    def change_event(self, account: Json, event_id: str, changes: Json) -> Json:
        check_event_spec(changes, partial=True)
        with control_errors(GraphError):
            return self.calendar.change_event(account, event_id, changes)

    def delete_event(self, account: Json, event_id: str) -> None:
        with control_errors(GraphError):
            self.calendar.delete_event(account, event_id)

    def respond(self, account: Json, event_id: str, attendee: str, response: str) -> Json:
        with control_errors(GraphError):
            return self.calendar.respond(account, event_id, attendee, response)

    def events(self, account: Json) -> list[Json]:
        return self.calendar.events(account)

    def expire_sync_state(self, account: Json) -> None:
        self.mail.expire_sync_state(account)
        self.calendar.expire_sync_state(account)
