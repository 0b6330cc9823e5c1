"""Provider data Aspire must take in without losing anything or falling over."""

from __future__ import annotations

import datetime as dt
import json
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun, User
from calendarsync.models import Appointment, CalendarSyncState
from providers.google.calendar import event_from_google
from providers.microsoft.calendar import event_from_graph
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import calendar_requests, change_event, delete_event, make_event, sync
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox

PROVIDERS = ["microsoft", "google"]


@pytest.fixture(params=PROVIDERS)
def bob_calendar(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    return connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")


def test_an_event_with_no_end_is_kept_as_an_instant_and_says_so() -> None:
    graph = event_from_graph({
        "id": "AAMkNoEnd", "subject": "Call back", "isAllDay": False, "sensitivity": "normal", "showAs": "busy",
        "start": {"dateTime": "2026-12-01T15:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Central Standard Time", "@odata.etag": 'W/"abc"',
    })
    google = event_from_google({"id": "noend1", "summary": "Call back", "etag": '"9"',
                                "start": {"dateTime": "2026-12-01T09:00:00-06:00", "timeZone": "America/Chicago"}},
                               "UTC")
    for event in (graph, google):
        assert event.start == event.end == dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
        assert "no valid end" in " ".join(event.problems)
    all_day = event_from_google({"id": "noend2", "start": {"date": "2026-12-01"}}, "UTC")
    assert (all_day.start.date(), all_day.end.date()) == (dt.date(2026, 12, 1), dt.date(2026, 12, 2))


@pytest.mark.parametrize(("description", "notes"), [
    # Plain text, as other apps write it: a "<" of its own is kept, and so are its lines.
    ("Dana <dana@homes.example>\nGate code < 5 digits", "Dana <dana@homes.example>\nGate code < 5 digits"),
    ("Bring <ladder> and rake", "Bring <ladder> and rake"),
    # Google Calendar's editor: HTML, a line break as <br>, entities for what is not markup.
    ("Back gate<br>Code <b>4512</b> &lt; padlock<br><br>Call Dana", "Back gate\nCode 4512 < padlock\n\nCall Dana"),
    # HTML with line ends of its own (pasted): the lines stay, as Calendar shows them.
    ("Mulch<br>Edging\nCleanup <i>after</i>", "Mulch\nEdging\nCleanup after"),
    # A link keeps where it goes: the notes are text.
    ('Join <a href="https://meet.google.com/abc-defg-hij">Google Meet</a><br>Plan: <a href="https://plans.example/42">'
     "https://plans.example/42</a>", "Join Google Meet <https://meet.google.com/abc-defg-hij>\nPlan: https://plans.example/42"),
])
def test_a_google_description_is_read_as_html_only_when_the_editor_wrote_it(description: str, notes: str) -> None:
    times = {"start": {"dateTime": "2026-12-01T09:00:00Z"}, "end": {"dateTime": "2026-12-01T10:00:00Z"}}
    event = event_from_google({"id": "notes1", "summary": "Visit", "description": description, **times}, "UTC")
    assert event.notes == notes


def next_dst_change(zone: zoneinfo.ZoneInfo) -> dt.date:
    day = timezone.now().astimezone(zone).date() + dt.timedelta(days=1)
    while True:
        before = dt.datetime.combine(day, dt.time(), zone).utcoffset()
        after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).utcoffset()
        if before != after:
            return day
        day += dt.timedelta(days=1)


def test_an_all_day_event_across_a_dst_change_covers_exactly_its_days(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    chicago = zoneinfo.ZoneInfo("America/Chicago")
    change = next_dst_change(chicago)
    first, after_last = change - dt.timedelta(days=1), change + dt.timedelta(days=2)
    make_event(providers_on_sandbox, bob_calendar, subject="Aeration days", all_day=True, start=first.isoformat(),
               end=after_last.isoformat(), time_zone="America/Chicago")
    sync(bob_calendar)
    appointment = Appointment.objects.get(connection=bob_calendar)
    assert appointment.all_day and (appointment.start.date(), appointment.end.date()) == (first, after_last)
    client = client_for(bob)
    for offset, expected in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        page = client.get("/calendar/", {"view": "day", "date": (change + dt.timedelta(days=offset)).isoformat()})
        assert ("Aeration days" in page.content.decode()) is expected, offset


def test_an_event_with_as_many_attendees_as_the_provider_allows(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    start = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT10:00:00")
    end = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT11:00:00")
    # Exchange Online allows 500 attendees an event; Google documents no limit.
    count = 500 if bob_calendar.provider == MailboxConnection.Provider.MICROSOFT else 1000
    attendees = [f"neighbour{n}@hoa.example" for n in range(count)]
    make_event(providers_on_sandbox, bob_calendar, subject="HOA annual meeting", start=start, end=end,
               attendees=attendees)
    assert sync(bob_calendar).outcome == SyncRun.Outcome.SUCCEEDED
    appointment = Appointment.objects.get(connection=bob_calendar)
    assert [person[1] for person in appointment.attendees] == attendees
    page = client_for(bob).get(f"/calendar/appointments/{appointment.pk}/").content.decode()
    assert f"{count}:" in page and f"and {count - 20} more" in page


def test_windows_time_zone_names_from_graph(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    day = (timezone.now() + dt.timedelta(days=3)).date()
    make_event(providers_on_sandbox, connection, subject="West coast supplier", start=f"{day}T08:00:00",
               end=f"{day}T09:00:00", time_zone="Pacific Standard Time")
    sync(connection)
    appointment = Appointment.objects.get(connection=connection)
    assert appointment.time_zone == "America/Los_Angeles"
    assert appointment.start == dt.datetime.combine(day, dt.time(8), zoneinfo.ZoneInfo("America/Los_Angeles"))


def test_a_series_with_500_exceptions(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    first = (timezone.now() - dt.timedelta(days=10)).replace(hour=7, minute=0, second=0, microsecond=0)
    series = make_event(providers_on_sandbox, bob_calendar, subject="Standup",
                        start=first.strftime("%Y-%m-%dT%H:%M:%S"),
                        end=(first + dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC",
                        rrule="FREQ=DAILY;COUNT=600")
    sync(bob_calendar)
    starts = [first + dt.timedelta(days=n) for n in range(600)]
    for n in range(500):
        occurrence_id = f"{series['id']}_{starts[n]:%Y%m%dT%H%M%SZ}"
        if n % 5 == 0:
            delete_event(providers_on_sandbox, bob_calendar, occurrence_id)
        else:
            change_event(providers_on_sandbox, bob_calendar, occurrence_id, subject=f"Standup {n}")
    run = sync(bob_calendar)
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    window_end = CalendarSyncState.objects.get(connection=bob_calendar).window_end
    assert window_end is not None
    expected = {n for n in range(600) if starts[n] < window_end and not (n < 500 and n % 5 == 0)}
    held = Appointment.objects.filter(connection=bob_calendar, series_id=series["id"])
    assert held.count() == len(expected)
    renamed = dict(held.filter(title__startswith="Standup ").values_list("start", "title"))
    assert all(renamed[starts[n]] == f"Standup {n}" for n in expected if n < 500)
    since = time.time()
    sync(bob_calendar)
    assert len(calendar_requests(providers_on_sandbox, "bob@greenleaf.example", since)) == 1


FIXTURES = Path(__file__).parent / "fixtures"


def odd_items(provider: str, day: dt.date) -> list[dict[str, Any]]:
    """The fixture's odd items for the provider, with their times on ``day``."""
    name = "odd_graph_items.json" if provider == MailboxConnection.Provider.MICROSOFT else "odd_google_items.json"
    text = (FIXTURES / name).read_text().replace("{day}", day.isoformat())
    return list(json.loads(text)["items"])


def test_odd_items_are_left_out_or_kept_with_a_note_and_the_rest_of_the_calendar_syncs(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    day = (timezone.now() + dt.timedelta(days=2)).date()
    make_event(providers_on_sandbox, bob_calendar, subject="Spring cleanup", start=f"{day}T08:00:00",
               end=f"{day}T09:00:00", time_zone="America/Chicago")
    items = odd_items(bob_calendar.provider, day)
    for odd in items:
        providers_on_sandbox.control("POST", f"/accounts/{bob_calendar.provider}/bob@greenleaf.example/events",
                                     json={"raw": odd["item"]})

    run = sync(bob_calendar)

    left_out = [odd for odd in items if odd["expect"] == "left out"]
    kept = {odd["title"]: odd for odd in items if odd["expect"] == "kept"}
    held = {a.title: a for a in Appointment.objects.filter(connection=bob_calendar)}
    assert set(held) == {"Spring cleanup", *kept}
    assert held["Spring cleanup"].problems == ""
    for title, odd in kept.items():
        assert odd["note"] in held[title].problems, (odd["what"], held[title].problems)
    assert run.outcome == SyncRun.Outcome.PARTIAL
    assert run.items_failed == len(left_out) and run.items_imported == 1 + len(kept)
    provider = "Outlook" if bob_calendar.provider == MailboxConnection.Provider.MICROSOFT else "Google Calendar"
    assert run.error.startswith(f"{len(left_out)} events from {provider} could not be read and were left out: ")
    for reason in {odd["reason"] for odd in left_out}:
        assert reason in run.error
    assert sync(bob_calendar).outcome == SyncRun.Outcome.SUCCEEDED  # nothing new, nothing odd
    listed = providers_on_sandbox.control("GET", f"/accounts/{bob_calendar.provider}/bob@greenleaf.example/events")
    assert [odd["item"] for odd in items] == listed["events"][-len(items):]  # the control API shows them as given


def test_an_event_that_comes_back_unreadable_keeps_its_last_good_version(
    providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    day = (timezone.now() + dt.timedelta(days=3)).date()
    event = make_event(providers_on_sandbox, connection, subject="Hedge trim", start=f"{day}T10:00:00",
                       end=f"{day}T11:00:00")
    sync(connection)
    # The same event listed again, but without its start; then a full listing (the cursor lost).
    make_event(providers_on_sandbox, connection, raw={"kind": "calendar#event", "id": event["id"],
                                                      "status": "confirmed", "summary": "Hedge trim"})
    providers_on_sandbox.control("POST", "/accounts/google/bob@greenleaf.example/expire-sync-state")
    run = sync(connection)
    assert run.outcome == SyncRun.Outcome.PARTIAL and run.items_failed == 1
    appointment = Appointment.objects.get(connection=connection)
    assert appointment.title == "Hedge trim" and appointment.provider_event_id == event["id"]
