"""Each person's working hours, from their User Settings, in Find a time and in the calendar's
shading; and Find a time's "Book this slot" into the New appointment form."""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.services import set_working_hours
from calendarsync.models import Appointment
from tests.conftest import client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
THURSDAY = dt.date(2031, 6, 5)  # far enough ahead that "now" never cuts into the searched week


def at(day: dt.date, hour: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60)), CHICAGO)


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def slots_of(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<span class="cal-slot-when">([^<]+)</span> <span class="muted">([^<]+)</span>', page)


def book_links(page: str) -> list[str]:
    return re.findall(r'<a class="button" href="([^"]+)">Book this slot</a>', page)


def test_find_a_time_honours_a_colleagues_shorter_day(bob: User, alice: User) -> None:
    # Alice works Monday to Thursday, 9 to 1 in New York: 8 to noon on Bob's Chicago clock.
    alice.time_zone = "America/New_York"
    alice.save(update_fields=["time_zone"])
    set_working_hours(user=alice, days=[0, 1, 2, 3], start=dt.time(9), end=dt.time(13))
    Appointment.objects.create(
        company=bob.company,
        owner=bob,
        title="Crew dispatch",
        start=at(THURSDAY, 8),
        end=at(THURSDAY, 9),
        time_zone="America/Chicago",
    )
    response = client_for(bob).get(
        "/calendar/find-a-time/",
        {"people": [str(bob.pk), str(alice.pk)], "minutes": "60", "date": THURSDAY.isoformat()},
    )
    assert response.status_code == 200
    page = text(response)
    # Thursday after Bob's dispatch until Alice stops at noon Chicago; no Friday (not her day);
    # then Monday, her 9 o'clock in New York.
    assert slots_of(page)[:2] == [
        ("Thu, Jun 5, 9:00 AM\u201310:00 AM", "free until 12:00 PM"),
        ("Mon, Jun 9, 8:00 AM\u20139:00 AM", "free until 12:00 PM"),
    ]
    assert "Alice Admin: Mon\u2013Thu, 9:00 AM\u20131:00 PM (America/New_York)" in page
    assert "Bob Staff: Mon\u2013Fri, 8:00 AM\u20135:00 PM (America/Chicago)" in page

    # Bob's own longer day does not stretch Alice's: alone, Bob is free until 5.
    alone = text(
        client_for(bob).get(
            "/calendar/find-a-time/", {"people": [str(bob.pk)], "minutes": "60", "date": THURSDAY.isoformat()}
        )
    )
    assert slots_of(alone)[0] == ("Thu, Jun 5, 9:00 AM\u201310:00 AM", "free until 5:00 PM")


def test_book_this_slot_opens_the_new_appointment_form_with_the_slots_times(bob: User, alice: User) -> None:
    set_working_hours(user=alice, days=[3], start=dt.time(14), end=dt.time(16, 30))
    client = client_for(bob)
    page = text(
        client.get(
            "/calendar/find-a-time/",
            {"people": [str(bob.pk), str(alice.pk)], "minutes": "90", "date": THURSDAY.isoformat()},
        )
    )
    assert slots_of(page)[0] == ("Thu, Jun 5, 2:00 PM\u20133:30 PM", "free until 4:30 PM")
    link = book_links(page)[0]
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path == "/calendar/appointments/new/"
    assert query["title"] == ["Meeting with Alice Admin"]
    assert dt.datetime.fromisoformat(query["start"][0]) == at(THURSDAY, 14)
    assert dt.datetime.fromisoformat(query["end"][0]) == at(THURSDAY, 15.5)

    form = text(client.get(link))
    assert 'name="title" value="Meeting with Alice Admin"' in form
    assert 'name="date" value="2031-06-05"' in form
    assert 'name="start_time" value="14:00:00"' in form and 'name="end_time" value="15:30:00"' in form

    # Saved through the form's own checks, like any appointment.
    response = client.post(
        link,
        {
            "title": "Meeting with Alice Admin",
            "date": "2031-06-05",
            "start_time": "14:00",
            "end_time": "15:30",
            "show_as": "busy",
        },
    )
    assert response.status_code == 302
    saved = Appointment.objects.get(owner=bob)
    assert (saved.title, saved.start, saved.end) == ("Meeting with Alice Admin", at(THURSDAY, 14), at(THURSDAY, 15.5))
    refused = text(
        client.post(
            link,
            {
                "title": "Meeting with Alice Admin",
                "date": "2031-06-05",
                "start_time": "15:30",
                "end_time": "14:00",
                "show_as": "busy",
            },
        )
    )
    assert "The appointment must end after it starts." in refused
    assert Appointment.objects.filter(owner=bob).count() == 1


def test_a_booking_link_for_the_viewer_alone_has_no_title_and_bad_times_are_ignored(bob: User) -> None:
    client = client_for(bob)
    page = text(
        client.get("/calendar/find-a-time/", {"people": [str(bob.pk)], "minutes": "30", "date": THURSDAY.isoformat()})
    )
    query = parse_qs(urlsplit(book_links(page)[0]).query)
    assert "title" not in query and dt.datetime.fromisoformat(query["start"][0]) == at(THURSDAY, 8)
    # A start that is not an instant (no offset) or not a time at all: the form's usual 9 to 10.
    for start in ("2031-06-05T14:00", "soon"):
        form = text(
            client.get(
                "/calendar/appointments/new/",
                {"start": start, "end": "2031-06-05T15:00:00+00:00", "date": "2031-06-05"},
            )
        )
        assert 'name="start_time" value="09:00:00"' in form and 'name="end_time" value="10:00:00"' in form


def test_a_slot_that_ends_on_another_date_on_the_viewers_clock_has_no_booking_link(bob: User, alice: User) -> None:
    # Alice works 10 to 5 in Tokyo: 8 PM to 3 AM on Bob's Chicago clock (daylight time in June).
    alice.time_zone = "Asia/Tokyo"
    alice.save(update_fields=["time_zone"])
    set_working_hours(user=alice, days=[0, 1, 2, 3, 4], start=dt.time(10), end=dt.time(17))
    client = client_for(bob)

    def first_slot(minutes: int) -> tuple[tuple[str, str], list[str]]:
        page = text(
            client.get(
                "/calendar/find-a-time/",
                {"people": [str(alice.pk)], "minutes": str(minutes), "date": THURSDAY.isoformat()},
            )
        )
        return slots_of(page)[0], book_links(page)

    slot, links = first_slot(120)
    assert slot == ("Thu, Jun 5, 12:00 AM\u20132:00 AM", "free until 3:00 AM")
    assert len(links) == 5  # each slot within one date of Bob's: each can be booked
    slot, links = first_slot(240)  # 8 PM to midnight: the form's end would be 12:00 AM of the same date
    assert slot == ("Thu, Jun 5, 8:00 PM\u201312:00 AM", "free until 3:00 AM") and not links


def test_the_day_view_shades_the_users_own_working_hours(bob: User, alice: User) -> None:
    set_working_hours(user=bob, days=[0, 1, 2, 3], start=dt.time(10), end=dt.time(14, 30))
    client = client_for(bob)

    def shading(user: User, day: dt.date) -> list[str]:
        params = {"view": "day", "date": day.isoformat()}
        if user.pk != bob.pk:
            params["user"] = str(user.pk)
        return re.findall(r'<div class="cal-work ([^"]+)" aria-hidden="true">', text(client.get("/calendar/", params)))

    assert shading(bob, THURSDAY) == ["q40 h18"]  # 10:00 for four and a half hours
    assert shading(bob, THURSDAY + dt.timedelta(days=1)) == []  # Friday: not a working day of Bob's
    assert shading(alice, THURSDAY) == ["q32 h36"]  # Alice's calendar: the house's 8 to 5


def test_the_hour_grid_opens_at_the_shown_calendars_working_day_start(bob: User, alice: User) -> None:
    # Bob starts at 6:30 in Chicago; Alice at 10 in New York, which is 9 on Bob's clock.
    set_working_hours(user=bob, days=[0, 1, 2, 3, 4], start=dt.time(6, 30), end=dt.time(15))
    alice.time_zone = "America/New_York"
    alice.save(update_fields=["time_zone"])
    set_working_hours(user=alice, days=[0, 1, 2, 3, 4], start=dt.time(10), end=dt.time(18))
    client = client_for(bob)

    def opens_at(path: str, **params: object) -> str:
        page = text(client.get(path, {"date": THURSDAY.isoformat(), **params}))
        rows = re.findall(r'<div class="cal-grid" data-scroll-row="(\d+)"', page)
        assert len(rows) == 1, rows
        return rows[0]

    assert opens_at("/calendar/") == "26"  # Bob's week, at his 6:30
    assert opens_at("/calendar/", view="day") == "26"
    assert opens_at("/calendar/", user=str(alice.pk)) == "36"  # Alice's, at her 10 (9 in Chicago)
    assert opens_at("/calendar/", view="day", user=str(alice.pk)) == "36"
    # The team day opens at the earliest start among the people shown, so nobody's morning is
    # above the fold, the viewer's own included only when the viewer is shown.
    assert opens_at("/calendar/team/", people=[str(alice.pk), str(bob.pk)]) == "26"
    assert opens_at("/calendar/team/", people=[str(alice.pk)]) == "36"


def test_only_slots_still_to_come_are_offered_and_a_stale_booking_link_is_refused(
    bob: User, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock stands still at 10:07 on Thursday in Chicago, whatever the time of day the test runs.
    monkeypatch.setattr(timezone, "now", lambda: at(THURSDAY, 10 + 7 / 60).astimezone(dt.UTC))
    client = client_for(bob)
    people = [str(bob.pk), str(alice.pk)]
    page = text(client.get("/calendar/find-a-time/", {"people": people, "minutes": "30",
                                                      "date": THURSDAY.isoformat()}))
    # Today from now on, at the next quarter hour: nothing earlier this morning is offered.
    assert slots_of(page)[0] == ("Thu, Jun 5, 10:15 AM\u201310:45 AM", "free until 5:00 PM")
    form = text(client.get(book_links(page)[0]))
    assert 'name="start_time" value="10:15:00"' in form and 'name="end_time" value="10:45:00"' in form

    # A link to a slot that has started (the page stayed open) or is over is refused, back to Find
    # a time for the same people and length, with the next free times.
    for start, end, shown in ((9.5, 10.5, "9:30 AM"), (8, 9, "8:00 AM")):
        link = "/calendar/appointments/new/?" + urlencode({
            "start": at(THURSDAY, start).isoformat(), "end": at(THURSDAY, end).isoformat(),
            "colleagues": str(alice.pk), "invite": "1", "title": "Meeting with Alice Admin"})
        response = client.get(link)
        assert response.status_code == 302
        where = urlsplit(response["Location"])
        assert where.path == "/calendar/find-a-time/"
        assert parse_qs(where.query) == {"people": people, "minutes": ["60"]}
        again = text(client.get(response["Location"]))
        assert f"That slot (Thu, Jun 5, {shown}) has already started: here are the next free times." in again
        assert slots_of(again)[0] == ("Thu, Jun 5, 10:15 AM\u201311:15 AM", "free until 5:00 PM")

    # A booking link from Find a time names whom it searched: a search for Alice alone goes back to
    # Alice alone once its slot has started, without Bob's own calendar ticked in again.
    alone = text(client.get("/calendar/find-a-time/", {"people": [str(alice.pk)], "minutes": "30",
                                                       "date": THURSDAY.isoformat()}))
    link = book_links(alone)[0]
    monkeypatch.setattr(timezone, "now", lambda: at(THURSDAY, 10 + 20 / 60).astimezone(dt.UTC))
    response = client.get(link)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {"people": [str(alice.pk)], "minutes": ["30"]}

    # By hand, an appointment in the past is still made as any other: visits are logged after the fact.
    response = client.post("/calendar/appointments/new/", {"title": "Mowing, Elm St", "date": THURSDAY.isoformat(),
                                                            "start_time": "08:00", "end_time": "09:00",
                                                            "show_as": "busy"})
    assert response.status_code == 302
    saved = Appointment.objects.get(owner=bob)
    assert (saved.start, saved.end) == (at(THURSDAY, 8), at(THURSDAY, 9))
