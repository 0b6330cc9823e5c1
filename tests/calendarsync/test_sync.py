"""Calendar sync both ways against the sandbox, through the real adapters."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, SyncRun, User
from calendarsync.models import Appointment, AuditEntry, CalendarSyncState
from calendarsync.services import AppointmentInput, create_appointment, delete_appointment, update_appointment
from providers.errors import ProviderError
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import (
    calendar_requests,
    change_event,
    delete_event,
    event_start,
    make_event,
    provider_events,
    sync,
    titles,
)
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox

PROVIDERS = ["microsoft", "google"]
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def day(offset: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=offset)


def at(offset: int, hour: int, minute: int = 0) -> str:
    return f"{day(offset).isoformat()}T{hour:02d}:{minute:02d}:00"


@pytest.fixture(params=PROVIDERS)
def bob_calendar(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    return connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")


def aspire_input(title: str, offset: int = 3, hour: int = 10, **extra: object) -> AppointmentInput:
    start = dt.datetime.combine(day(offset), dt.time(hour), CHICAGO)
    return AppointmentInput(title=title, start=start, end=start + dt.timedelta(hours=1), time_zone="America/Chicago",
                            **extra)  # type: ignore[arg-type]


def test_events_made_in_the_provider_arrive_read_only_with_their_zone(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    make_event(providers_on_sandbox, bob_calendar, subject="Mulch delivery", location="1402 Cedar Bend Dr",
               body="Back gate", start=at(2, 9), end=at(2, 10), time_zone="America/Chicago")
    run = sync(bob_calendar)
    assert run.kind == SyncRun.Kind.CALENDAR and run.outcome == SyncRun.Outcome.SUCCEEDED
    appointment = Appointment.objects.get(connection=bob_calendar)
    assert (appointment.title, appointment.location, appointment.notes) == ("Mulch delivery", "1402 Cedar Bend Dr",
                                                                             "Back gate")
    assert appointment.origin == Appointment.Origin.PROVIDER and not appointment.editable_in_aspire
    assert appointment.time_zone == "America/Chicago"
    assert appointment.start == dt.datetime.combine(day(2), dt.time(9), CHICAGO)
    assert appointment.end - appointment.start == dt.timedelta(hours=1)


def test_notes_keep_their_lines_however_the_calendar_app_wrote_them(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    # Outlook keeps typed notes as HTML (Aspire asks Graph for its text); Google Calendar's editor
    # writes HTML into the description itself.
    typed = "Back gate\nCode 4512 < the padlock\n\nCall Dana on arrival"
    written = typed if bob_calendar.provider == "microsoft" else \
        "Back gate<br>Code <b>4512</b> &lt; the padlock<br><br>Call Dana on arrival"
    make_event(providers_on_sandbox, bob_calendar, subject="Mulch delivery", body=written, start=at(2, 9),
               end=at(2, 10), time_zone="America/Chicago")
    sync(bob_calendar)
    assert Appointment.objects.get(connection=bob_calendar).notes == typed


def test_an_idle_run_makes_one_calendar_request(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    make_event(providers_on_sandbox, bob_calendar, subject="Walkthrough", start=at(1, 9), end=at(1, 10))
    sync(bob_calendar)
    since = time.time()
    run = sync(bob_calendar)
    assert len(calendar_requests(providers_on_sandbox, "bob@greenleaf.example", since)) == 1
    assert run.provider_requests == 1 and run.items_imported == 0


def test_recurring_series_shows_occurrences_with_moved_and_cancelled_exceptions(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    series = make_event(providers_on_sandbox, bob_calendar, subject="Crew standup", start=at(1, 7), end=at(1, 8),
                        time_zone="America/Chicago", rrule="FREQ=DAILY;COUNT=5")
    sync(bob_calendar)
    occurrences = list(Appointment.objects.filter(connection=bob_calendar).order_by("start"))
    assert len(occurrences) == 5
    assert all(a.series_id and not a.editable_in_aspire for a in occurrences)
    second, third = occurrences[1], occurrences[2]
    change_event(providers_on_sandbox, bob_calendar, second.provider_event_id, start=at(2, 11), end=at(2, 12),
                 subject="Crew standup (late)")
    delete_event(providers_on_sandbox, bob_calendar, third.provider_event_id)
    sync(bob_calendar)
    now_held = list(Appointment.objects.filter(connection=bob_calendar).order_by("start"))
    assert len(now_held) == 4
    moved = Appointment.objects.get(connection=bob_calendar, provider_event_id=second.provider_event_id)
    assert moved.title == "Crew standup (late)"
    assert moved.start == dt.datetime.combine(day(2), dt.time(11), CHICAGO)
    assert not Appointment.objects.filter(provider_event_id=third.provider_event_id).exists()
    assert series["id"]


def test_an_expired_cursor_means_a_full_resync_without_duplicates(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    first = make_event(providers_on_sandbox, bob_calendar, subject="Estimate", start=at(1, 9), end=at(1, 10))
    make_event(providers_on_sandbox, bob_calendar, subject="Invoice review", start=at(4, 9), end=at(4, 10))
    sync(bob_calendar)
    providers_on_sandbox.control("POST", f"/accounts/{bob_calendar.provider}/bob@greenleaf.example/expire-sync-state")
    delete_event(providers_on_sandbox, bob_calendar, first["id"])
    make_event(providers_on_sandbox, bob_calendar, subject="Site visit", start=at(5, 9), end=at(5, 10))
    run = sync(bob_calendar)
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert titles(bob_calendar) == ["Invoice review", "Site visit"]


def test_aspire_appointments_reach_the_provider_once_and_do_not_echo(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Spring cleanup estimate", location="Oak St"))
    assert appointment.push == Appointment.Push.CREATE
    sync(bob_calendar)
    appointment.refresh_from_db()
    assert appointment.push == "" and appointment.provider_event_id and appointment.etag
    events = [e for e in provider_events(providers_on_sandbox, bob_calendar)
              if (e.get("subject") or e.get("summary")) == "Spring cleanup estimate"]
    assert len(events) == 1
    stamp = appointment.updated_at
    since = time.time()
    run = sync(bob_calendar)  # our own write comes back on the read: recognised, not applied again
    appointment.refresh_from_db()
    assert appointment.updated_at == stamp and run.items_imported == 0
    assert len(calendar_requests(providers_on_sandbox, "bob@greenleaf.example", since)) == 1

    update_appointment(appointment=appointment, editor=bob, data=aspire_input("Spring cleanup estimate", hour=14))
    sync(bob_calendar)
    event = next(e for e in provider_events(providers_on_sandbox, bob_calendar)
                 if e["id"] == appointment.provider_event_id)
    assert event_start(event) == dt.datetime.combine(day(3), dt.time(14), CHICAGO)
    appointment.refresh_from_db()
    assert Appointment.objects.filter(connection=bob_calendar).count() == 1

    delete_appointment(appointment=appointment, editor=bob)
    sync(bob_calendar)
    assert not [e for e in provider_events(providers_on_sandbox, bob_calendar)
                if e["id"] == appointment.provider_event_id and e.get("status") != "cancelled"]
    assert not Appointment.objects.filter(pk=appointment.pk).exists()


def test_a_create_repeated_after_a_lost_answer_makes_one_event(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Irrigation check"))
    sync(bob_calendar)
    # As if the answer to the create had been lost: the next run sends the same create again.
    Appointment.objects.filter(pk=appointment.pk).update(push=Appointment.Push.CREATE, provider_event_id="", etag="")
    sync(bob_calendar)
    same = [e for e in provider_events(providers_on_sandbox, bob_calendar)
            if (e.get("subject") or e.get("summary")) == "Irrigation check"]
    assert len(same) == 1
    assert Appointment.objects.filter(owner=bob).count() == 1


def test_aspire_appointments_changed_in_the_provider_come_back_changed(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Fence quote"))
    sync(bob_calendar)
    appointment.refresh_from_db()
    change_event(providers_on_sandbox, bob_calendar, appointment.provider_event_id, subject="Fence quote (moved)",
                 start=at(6, 9), end=at(6, 10), time_zone="America/Chicago")
    sync(bob_calendar)
    appointment.refresh_from_db()
    assert appointment.title == "Fence quote (moved)" and appointment.origin == Appointment.Origin.ASPIRE
    assert appointment.start == dt.datetime.combine(day(6), dt.time(9), CHICAGO)
    assert appointment.editable_in_aspire


def test_a_conflict_keeps_the_provider_version_and_audits_the_aspire_one(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User, alice: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Patio design"))
    sync(bob_calendar)
    appointment.refresh_from_db()
    change_event(providers_on_sandbox, bob_calendar, appointment.provider_event_id, subject="Patio design (Outlook)")
    update_appointment(appointment=appointment, editor=bob, data=aspire_input("Patio design (Aspire)",
                                                                          notes="Pavers: grey\nEdging: steel"))
    run = sync(bob_calendar)
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    appointment.refresh_from_db()
    assert appointment.title == "Patio design (Outlook)" and appointment.push == ""
    entry = AuditEntry.objects.get(owner=bob)
    assert entry.kind == AuditEntry.Kind.CONFLICT and entry.kept_version["title"] == "Patio design (Aspire)"
    listed = provider_events(providers_on_sandbox, bob_calendar)
    provider_titles = {e.get("subject") or e.get("summary") for e in listed}
    assert "Patio design (Aspire)" not in provider_titles
    kept = client_for(bob).get("/calendar/changes/").content.decode()
    assert "Patio design (Aspire)" in kept
    assert "Pavers: grey<br>Edging: steel" in kept  # the kept notes' lines, as the appointment shows them
    assert "Patio design (Aspire)" not in client_for(alice).get("/calendar/changes/").content.decode()


def test_an_event_deleted_in_the_provider_while_edited_in_aspire_stays_deleted_and_audited(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Tree removal"))
    sync(bob_calendar)
    appointment.refresh_from_db()
    delete_event(providers_on_sandbox, bob_calendar, appointment.provider_event_id)
    update_appointment(appointment=appointment, editor=bob, data=aspire_input("Tree removal, two trees"))
    sync(bob_calendar)
    assert not Appointment.objects.filter(pk=appointment.pk).exists()
    entry = AuditEntry.objects.get(owner=bob)
    assert entry.kind == AuditEntry.Kind.DELETED_AT_PROVIDER
    assert entry.kept_version["title"] == "Tree removal, two trees"


def test_deletions_in_the_provider_reach_aspire(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    made_there = make_event(providers_on_sandbox, bob_calendar, subject="Lunch", start=at(1, 12), end=at(1, 13))
    made_here = create_appointment(owner=bob, data=aspire_input("Bid walk"))
    sync(bob_calendar)
    made_here.refresh_from_db()
    delete_event(providers_on_sandbox, bob_calendar, made_there["id"])
    delete_event(providers_on_sandbox, bob_calendar, made_here.provider_event_id)
    sync(bob_calendar)
    assert titles(bob_calendar) == []


def test_an_event_moved_out_of_the_window_is_kept_marked_until_the_provider_says_it_is_gone(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    event = make_event(providers_on_sandbox, bob_calendar, subject="Snow contract", start=at(3, 9), end=at(3, 10))
    sync(bob_calendar)
    far = (timezone.localdate() + dt.timedelta(days=500)).isoformat()
    change_event(providers_on_sandbox, bob_calendar, event["id"], start=f"{far}T09:00:00", end=f"{far}T10:00:00")
    sync(bob_calendar)
    kept = Appointment.objects.get(connection=bob_calendar)
    assert kept.title == "Snow contract" and kept.outside_window
    assert kept.start.date().isoformat() == far  # at its new time, as the provider has it
    page = client_for(bob).get(f"/calendar/appointments/{kept.pk}/").content.decode()
    assert "Moved outside the synced range" in page

    sync(bob_calendar)  # nothing new: still kept
    assert titles(bob_calendar) == ["Snow contract"]

    delete_event(providers_on_sandbox, bob_calendar, event["id"])
    # The daily full listing asks the provider about what it keeps outside the window.
    CalendarSyncState.objects.filter(connection=bob_calendar).update(full_sync_at=None)
    sync(bob_calendar)
    assert titles(bob_calendar) == []


def test_an_occurrence_moved_out_of_the_window_is_kept_marked_like_a_single_event(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    # A yearly series: the first occurrence is in the window (a year ahead), the second is not, so
    # the first may move as far as a year on without crossing it.
    series = make_event(providers_on_sandbox, bob_calendar, subject="Annual contract review", start=at(300, 9),
                        end=at(300, 10), time_zone="America/Chicago", rrule="FREQ=YEARLY;COUNT=2")
    sync(bob_calendar)
    (occurrence,) = Appointment.objects.filter(connection=bob_calendar, series_id=series["id"])
    change_event(providers_on_sandbox, bob_calendar, occurrence.provider_event_id, start=at(400, 9), end=at(400, 10))
    sync(bob_calendar)
    kept = Appointment.objects.get(connection=bob_calendar, provider_event_id=occurrence.provider_event_id)
    assert kept.outside_window and kept.series_id == series["id"]
    assert kept.start == dt.datetime.combine(day(400), dt.time(9), CHICAGO)  # where the provider has it
    page = client_for(bob).get(f"/calendar/appointments/{kept.pk}/").content.decode()
    assert "Moved outside the synced range" in page

    delete_event(providers_on_sandbox, bob_calendar, occurrence.provider_event_id)
    CalendarSyncState.objects.filter(connection=bob_calendar).update(full_sync_at=None)
    sync(bob_calendar)
    assert not Appointment.objects.filter(connection=bob_calendar, series_id=series["id"]).exists()


def test_an_event_moved_back_into_the_window_is_no_longer_marked(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    event = make_event(providers_on_sandbox, bob_calendar, subject="Snow contract", start=at(3, 9), end=at(3, 10))
    sync(bob_calendar)
    far = (timezone.localdate() + dt.timedelta(days=500)).isoformat()
    change_event(providers_on_sandbox, bob_calendar, event["id"], start=f"{far}T09:00:00", end=f"{far}T10:00:00")
    sync(bob_calendar)
    change_event(providers_on_sandbox, bob_calendar, event["id"], start=at(4, 9), end=at(4, 10))
    CalendarSyncState.objects.filter(connection=bob_calendar).update(full_sync_at=None)
    sync(bob_calendar)
    back = Appointment.objects.get(connection=bob_calendar)
    assert not back.outside_window and back.start.date() == day(4)


def test_a_throttled_run_is_recorded_and_retried_later(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    from providers.errors import Throttled

    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 7,
                                                          "path": "^/(v1.0/me/calendarView|calendar/v3)"})
    with pytest.raises(Throttled) as caught:
        sync(bob_calendar)
    assert caught.value.retry_after == pytest.approx(7, abs=1)
    run = SyncRun.objects.get(connection=bob_calendar, kind=SyncRun.Kind.CALENDAR)
    assert run.outcome == SyncRun.Outcome.RETRYING
    assert sync(bob_calendar).outcome == SyncRun.Outcome.SUCCEEDED


def test_an_appointment_deleted_before_it_was_sent_never_reaches_the_provider(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    appointment = create_appointment(owner=bob, data=aspire_input("Changed my mind"))
    delete_appointment(appointment=appointment, editor=bob)
    assert "Changed my mind" not in client_for(bob).get("/calendar/", {"view": "month"}).content.decode()
    run = sync(bob_calendar)
    assert not Appointment.objects.filter(pk=appointment.pk).exists()
    assert not provider_events(providers_on_sandbox, bob_calendar)
    assert run.provider_requests == 1  # the read only


CREATE_PATH = {"microsoft": r"^/v1.0/me/events$", "google": r"/calendars/primary/events$"}


def test_an_appointment_deleted_after_its_create_answer_was_lost_is_deleted_at_the_provider(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User
) -> None:
    """The create reached the provider but its answer did not reach us, so Aspire has no event id;
    then the user deletes the appointment. The event must not come back as a read-only
    appointment nobody can delete: it carries our client id, so it is found and deleted."""
    sync(bob_calendar)
    appointment = create_appointment(owner=bob, data=aspire_input("Site walk"))
    providers_on_sandbox.control("POST", "/faults", json={
        "kind": "drop", "after": True, "method": "POST", "path": CREATE_PATH[bob_calendar.provider]})
    with pytest.raises(ProviderError):
        sync(bob_calendar)
    assert [e for e in provider_events(providers_on_sandbox, bob_calendar)
            if (e.get("subject") or e.get("summary")) == "Site walk"]  # it was made there
    assert Appointment.objects.get(pk=appointment.pk).provider_event_id == ""

    delete_appointment(appointment=Appointment.objects.get(pk=appointment.pk), editor=bob)
    assert sync(bob_calendar).outcome == SyncRun.Outcome.SUCCEEDED
    assert not [e for e in provider_events(providers_on_sandbox, bob_calendar)
                if (e.get("subject") or e.get("summary")) == "Site walk" and e.get("status") != "cancelled"]
    assert not Appointment.objects.filter(connection=bob_calendar).exists()
    sync(bob_calendar)
    assert not Appointment.objects.filter(connection=bob_calendar).exists()  # nothing comes back


def test_a_series_shortened_in_the_provider_loses_its_dropped_occurrences_on_the_next_incremental_run(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    series = make_event(providers_on_sandbox, bob_calendar, subject="Crew standup", start=at(1, 7), end=at(1, 8),
                        time_zone="America/Chicago", rrule="FREQ=DAILY;COUNT=6")
    sync(bob_calendar)
    assert Appointment.objects.filter(connection=bob_calendar, series_id=series["id"]).count() == 6

    # As the user would in Outlook or Google Calendar: the series now ends after four occurrences.
    change_event(providers_on_sandbox, bob_calendar, series["id"], rrule="FREQ=DAILY;COUNT=4")
    since = time.time()
    run = sync(bob_calendar)

    requests = calendar_requests(providers_on_sandbox, "bob@greenleaf.example", since)
    assert len(requests) == 1 and ("syncToken=" in requests[0]["query"] or "deltatoken=" in requests[0]["query"])
    held = Appointment.objects.filter(connection=bob_calendar, series_id=series["id"]).order_by("start")
    assert [a.start for a in held] == [dt.datetime.combine(day(n), dt.time(7), CHICAGO) for n in range(1, 5)]
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
