"""The calendar pages as office staff use them: creating, changing and deleting appointments,
read-only outside events, and times that stay right across daylight-saving changes."""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo

from accounts.models import MailboxConnection, User
from calendarsync.models import Appointment
from tests.conftest import client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def connect_calendar(user: User) -> MailboxConnection:
    return MailboxConnection.objects.create(user=user, company=user.company, provider="google",
                                            mailbox_address=user.email, state="connected", sync_calendar=True)


def form(**fields: object) -> dict[str, object]:
    return {"title": "Estimate", "date": "2026-12-02", "start_time": "09:00", "end_time": "10:30",
            "location": "", "notes": "", "show_as": "busy", **fields}


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def test_new_appointments_are_made_in_the_users_time_zone_and_queued_for_the_provider(bob: User) -> None:
    connect_calendar(bob)
    client = client_for(bob)
    page = text(client.get("/calendar/appointments/new/"))
    assert "create them in Outlook or Google Calendar" in page  # no repeating appointments from Aspire
    response = client.post("/calendar/appointments/new/", form(title="Spring cleanup", location="Oak St"))
    assert response.status_code == 302
    appointment = Appointment.objects.get(owner=bob)
    assert appointment.start == dt.datetime(2026, 12, 2, 9, tzinfo=CHICAGO)
    assert appointment.end - appointment.start == dt.timedelta(minutes=90)
    assert appointment.time_zone == "America/Chicago" and appointment.push == Appointment.Push.CREATE
    week = text(client.get("/calendar/", {"date": "2026-12-02"}))
    assert "Spring cleanup" in week and "9:00 AM\u201310:30 AM" in week


def test_bad_times_are_refused_with_a_clear_message(bob: User) -> None:
    page = text(client_for(bob).post("/calendar/appointments/new/", form(start_time="11:00", end_time="10:00")))
    assert "The appointment must end after it starts." in page
    assert not Appointment.objects.exists()


def test_owners_change_and_delete_their_aspire_appointments(bob: User) -> None:
    connect_calendar(bob)
    client = client_for(bob)
    client.post("/calendar/appointments/new/", form())
    appointment = Appointment.objects.get(owner=bob)
    Appointment.objects.filter(pk=appointment.pk).update(provider_event_id="evt1", etag='"1"', push="")
    assert client.post(f"/calendar/appointments/{appointment.pk}/edit/",
                       form(title="Estimate, front yard", start_time="13:00", end_time="14:00")).status_code == 302
    appointment.refresh_from_db()
    assert appointment.title == "Estimate, front yard" and appointment.push == Appointment.Push.UPDATE
    assert appointment.start == dt.datetime(2026, 12, 2, 13, tzinfo=CHICAGO)
    assert client.post(f"/calendar/appointments/{appointment.pk}/delete/").status_code == 302
    appointment.refresh_from_db()
    assert appointment.push == Appointment.Push.DELETE  # gone from every page until the provider deletes it too
    assert "Estimate" not in text(client.get("/calendar/", {"date": "2026-12-02"}))


def test_events_made_in_the_provider_are_read_only(bob: User) -> None:
    start = dt.datetime(2026, 12, 3, 15, tzinfo=dt.UTC)
    outside = Appointment.objects.create(company=bob.company, owner=bob, title="Made in Outlook", start=start,
                                         end=start + dt.timedelta(hours=1), origin="provider",
                                         provider_event_id="AAMk1")
    occurrence = Appointment.objects.create(company=bob.company, owner=bob, title="Weekly crew meeting",
                                            start=start, end=start + dt.timedelta(hours=1), origin="provider",
                                            provider_event_id="AAMk2_x", series_id="AAMk2")
    client = client_for(bob)
    for appointment in (outside, occurrence):
        detail = text(client.get(f"/calendar/appointments/{appointment.pk}/"))
        assert "/edit/" not in detail and "Delete</button>" not in detail
        refused = client.post(f"/calendar/appointments/{appointment.pk}/edit/", form(title="Changed here"))
        assert refused.status_code == 403
        assert "change it in Outlook or Google Calendar" in text(refused) or "can only be changed there" in text(
            refused)
        assert client.post(f"/calendar/appointments/{appointment.pk}/delete/").status_code == 403
        appointment.refresh_from_db()
        assert appointment.title != "Changed here" and appointment.push == ""


def test_times_stay_on_the_wall_clock_across_the_daylight_saving_change(bob: User) -> None:
    # Clocks in Chicago go back on Sunday, November 1, 2026: that day is 25 hours long.
    client = client_for(bob)
    for day in ("2026-10-31", "2026-11-02"):
        client.post("/calendar/appointments/new/", form(title=f"Standup {day}", date=day, start_time="09:00",
                                                        end_time="09:15"))
    client.post("/calendar/appointments/new/", form(title="Late call", date="2026-11-01", start_time="23:30",
                                                    end_time="23:45"))
    client.post("/calendar/appointments/new/", form(title="Fall cleanup days", date="2026-10-31", all_day="on",
                                                    end_date="2026-11-01", start_time="", end_time=""))
    week = text(client.get("/calendar/", {"date": "2026-10-29", "view": "week"}))
    next_week = text(client.get("/calendar/", {"date": "2026-11-02", "view": "week"}))
    # Once in the hour grid and once in the agenda list a phone shows.
    assert week.count("9:00 AM\u20139:15 AM") == 2 and next_week.count("9:00 AM\u20139:15 AM") == 2
    sunday = text(client.get("/calendar/", {"date": "2026-11-01", "view": "day"}))
    assert "Late call" in sunday and "11:30 PM\u201311:45 PM" in sunday and "Fall cleanup days" in sunday
    monday = text(client.get("/calendar/", {"date": "2026-11-02", "view": "day"}))
    assert "Late call" not in monday and "Fall cleanup days" not in monday
    all_day = Appointment.objects.get(title="Fall cleanup days")
    assert (all_day.start.date(), all_day.end.date()) == (dt.date(2026, 10, 31), dt.date(2026, 11, 2))
    assert all_day.end - all_day.start == dt.timedelta(days=2)


def test_month_view_and_colleague_calendars(bob: User, alice: User) -> None:
    client_for(bob).post("/calendar/appointments/new/", form(title="Sod install", date="2026-12-15"))
    month = text(client_for(alice).get("/calendar/", {"user": str(bob.pk), "view": "month", "date": "2026-12-01"}))
    assert "Bob Staff\u2019s calendar" in month and "Sod install" in month
    assert "New appointment" not in month  # one adds appointments to one's own calendar
