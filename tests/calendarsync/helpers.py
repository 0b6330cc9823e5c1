"""Shared helpers for calendar tests against the sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from accounts.models import MailboxConnection, SyncRun
from calendarsync.models import Appointment
from calendarsync.sync import run_calendar_sync
from sandbox.runner import SandboxProcess


def make_event(sandbox: SandboxProcess, connection: MailboxConnection, **spec: Any) -> dict[str, Any]:
    """Create an event as the provider's user would, in their calendar app."""
    return dict(sandbox.control("POST", f"/accounts/{connection.provider}/{connection.mailbox_address}/events",
                                json=spec))


def change_event(sandbox: SandboxProcess, connection: MailboxConnection, event_id: str, **changes: Any) -> None:
    sandbox.control("PATCH", f"/accounts/{connection.provider}/{connection.mailbox_address}/events/{event_id}",
                    json=changes)


def delete_event(sandbox: SandboxProcess, connection: MailboxConnection, event_id: str) -> None:
    sandbox.control("DELETE", f"/accounts/{connection.provider}/{connection.mailbox_address}/events/{event_id}")


def provider_events(sandbox: SandboxProcess, connection: MailboxConnection) -> list[dict[str, Any]]:
    listed = sandbox.control("GET", f"/accounts/{connection.provider}/{connection.mailbox_address}/events")
    return list(listed["events"] if isinstance(listed, dict) else listed)


def sync(connection: MailboxConnection) -> SyncRun:
    run = run_calendar_sync(connection_id=connection.pk, owner="test")
    assert run is not None
    return run


def calendar_requests(sandbox: SandboxProcess, email: str, since: float) -> list[dict[str, Any]]:
    """Provider calendar API calls for the mailbox (token endpoint calls are not calendar requests)."""
    log = sandbox.control("GET", "/requests", params={"account": email, "since": since})["requests"]
    return [r for r in log if r["path"].startswith(("/v1.0", "/calendar", "/batch"))]


def titles(connection: MailboxConnection) -> list[str]:
    return sorted(Appointment.objects.filter(connection=connection).values_list("title", flat=True))


def event_start(event: dict[str, Any]) -> dt.datetime:
    """When a listed provider event starts, as an aware instant (Graph lists in UTC; Google with an offset)."""
    text = str(event["start"]["dateTime"]).split(".")[0]
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
