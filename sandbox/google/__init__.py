"""The Google emulator. See sandbox/emulator.py for the interface it implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from ..app import Sandbox

Json = dict[str, Any]


class GoogleEmulator:
    name = "google"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    def routes(self) -> list[BaseRoute]:
        return []

    def setup_account(self, account: Json) -> None:
        account["data"][self.name] = {}

    def put_message(self, account: Json, *, folder: str, raw: bytes) -> Json:
        raise NotImplementedError

    def mailbox(self, account: Json) -> Json:
        raise NotImplementedError

    def put_event(self, account: Json, spec: Json) -> Json:
        raise NotImplementedError

    def change_event(self, account: Json, event_id: str, changes: Json) -> Json:
        raise NotImplementedError

    def delete_event(self, account: Json, event_id: str) -> None:
        raise NotImplementedError

    def events(self, account: Json) -> list[Json]:
        raise NotImplementedError

    def expire_sync_state(self, account: Json) -> None:
        raise NotImplementedError
