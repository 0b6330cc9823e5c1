"""The views to schedule from, through HTTP: the hour grid, the team view and Find a time, with the
calendar privacy rules and tenancy applied on the server."""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo

from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Company, MailboxConnection, User
from calendarsync.models import Appointment
from tests.conftest import PASSWORD, client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
THURSDAY = dt.date(2031, 6, 5)  # far enough ahead that "now" never cuts into the searched week


def at(day: dt.date, hour: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60)), CHICAGO)


def appointment(owner: User, title: str, day: dt.date, start: float, end: float, **fields: object) -> Appointment:
    return Appointment.objects.create(company=owner.company, owner=owner, title=title, start=at(day, start),
                                      end=at(day, end), time_zone="America/Chicago", **fields)


def private_calendar(user: User) -> MailboxConnection:
    return MailboxConnection.objects.create(user=user, company=user.company, provider="microsoft",
                                            mailbox_address=user.email, state="connected", sync_calendar=True,
                                            calendar_privacy="private")


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def test_the_week_grid_puts_overlapping_appointments_side_by_side(bob: User) -> None:
    appointment(bob, "Estimate walk-through", THURSDAY, 9, 11)
    appointment(bob, "Irrigation check", THURSDAY, 10, 12)
    appointment(bob, "Crew lunch", THURSDAY, 13, 14)
    appointment(bob, "Trade show", THURSDAY, 0, 0, all_day=True)
    Appointment.objects.filter(title="Trade show").update(start=dt.datetime(2031, 6, 5, tzinfo=dt.UTC),
                                                          end=dt.datetime(2031, 6, 6, tzinfo=dt.UTC))
    page = text(client_for(bob).get("/calendar/", {"view": "week", "date": THURSDAY.isoformat()}))
    grid = page[page.index('class="cal-grid"'):page.index('class="cal-days')]

    def classes(title: str) -> str:
        match = re.search(r'class="cal-block([^"]*)"[^>]*><span class="cal-block-time">[^<]*</span> '
                          rf'<span class="cal-title">{title}</span>', grid)
        assert match, title
        return match.group(1)

    assert "q36 h8 lane-0-2" in classes("Estimate walk-through")  # 9:00, two hours, left half
    assert "q40 h8 lane-1-2" in classes("Irrigation check")  # 10:00, right half
    assert "q52 h4 lane-0-1" in classes("Crew lunch")  # alone: full width
    all_day_row = grid[grid.index("cal-allday-row"):grid.index("cal-scroll")]
    assert "Trade show" in all_day_row
    assert len(re.findall(r'class="cal-col( cal-today)?"', grid)) == 7
    assert 'data-scroll-row="32"' in grid  # it opens at 8 AM


def test_the_team_view_shows_a_private_colleague_as_busy_blocks_only(bob: User, alice: User, carol: User) -> None:
    private_calendar(alice)
    appointment(alice, "Dentist for Alice", THURSDAY, 13, 14, location="Elm St clinic", notes="root canal")
    appointment(bob, "Estimate walk-through", THURSDAY, 9, 10)
    response = client_for(bob).get("/calendar/team/", {"date": THURSDAY.isoformat(),
                                                       "people": [str(alice.pk), str(bob.pk)]})
    page = text(response)
    assert response.status_code == 200
    assert "Dentist" not in page and "Elm St" not in page and "root canal" not in page
    assert "Estimate walk-through" in page
    assert re.search(r'cal-busy q52 h4 lane-0-1"><span class="cal-block-time">1:00 PM\u20132:00 PM</span> '
                     r'<span class="cal-title">Busy</span>', page)
    # And the week: the same busy block, in Alice's row.
    week = text(client_for(bob).get("/calendar/team/", {"view": "week", "date": THURSDAY.isoformat(),
                                                       "people": [str(alice.pk)]}))
    assert "Dentist" not in week and "1:00 PM\u20132:00 PM" in week and "Busy" in week


def test_the_current_time_line_is_drawn_on_the_viewers_clock_without_script(bob: User, alice: User) -> None:
    bob.time_zone = "America/Denver"
    bob.save(update_fields=["time_zone"])
    denver = zoneinfo.ZoneInfo("America/Denver")
    client = client_for(bob)
    before = timezone.now().astimezone(denver)
    page = text(client.get("/calendar/team/", {"people": [str(alice.pk), str(bob.pk)]}))  # today, by default
    after = timezone.now().astimezone(denver)
    rows = {f"q{(moment.hour * 60 + moment.minute) // 15}" for moment in (before, after)}
    lines = re.findall(r'<div class="cal-now (q\d+)" title="Now">', page)
    assert len(lines) == 2 and set(lines) <= rows  # a line in each colleague's column, at this quarter hour
    # What moves it while the page stays open: the grid's zone, each column's date, and the script.
    assert 'data-zone="America/Denver"' in page and f'data-date="{before.date().isoformat()}"' in page
    assert "/static/js/now-line.js" in page
    other_day = text(client.get("/calendar/team/", {"date": THURSDAY.isoformat(), "people": [str(alice.pk)]}))
    assert "cal-now" not in other_day


def test_the_team_view_refuses_people_of_another_company(bob: User, carol: User) -> None:
    appointment(carol, "Summit board meeting", THURSDAY, 9, 10)
    response = client_for(bob).get("/calendar/team/", {"date": THURSDAY.isoformat(), "people": [str(carol.pk)]})
    assert response.status_code == 400
    page = text(response)
    assert "not a person of your company" in page and "Summit board meeting" not in page
    assert "Carol" not in page
    assert client_for(bob).get("/calendar/team/", {"people": ["not-a-uuid"]}).status_code == 400


def test_the_team_view_reads_in_the_same_number_of_queries_for_any_number_of_colleagues(
    greenleaf: Company, bob: User
) -> None:
    colleagues = [User.objects.create_user(f"crew{n}@greenleaf.example", PASSWORD, full_name=f"Crew {n}",
                                           company=greenleaf) for n in range(12)]
    for n, person in enumerate(colleagues):
        if n % 2:
            private_calendar(person)
        appointment(person, f"Job {n}", THURSDAY, 8 + n % 8, 9 + n % 8)
        appointment(person, f"Secret {n}", THURSDAY, 15, 16, sensitivity="private")
    client = client_for(bob)
    counts = {}
    for size in (2, 12):
        for view in ("day", "week"):
            with CaptureQueriesContext(db_connection) as captured:
                response = client.get("/calendar/team/", {"view": view, "date": THURSDAY.isoformat(),
                                                          "people": [str(p.pk) for p in colleagues[:size]]})
            assert response.status_code == 200
            assert "Secret" not in text(response)
            counts[size, view] = len(captured)
    assert counts[2, "day"] == counts[12, "day"] and counts[2, "week"] == counts[12, "week"]


def test_find_a_time_proposes_a_slot_free_for_everyone(bob: User, alice: User) -> None:
    private_calendar(alice)
    # Thursday: Bob is out all morning; Alice has a private appointment (a busy block for Bob) at
    # 1, and a tentative one at 2:30. An appointment shown as free does not block.
    appointment(bob, "Site visits", THURSDAY, 8, 12)
    appointment(alice, "Dentist", THURSDAY, 13, 14, sensitivity="private")
    appointment(alice, "Maybe: vendor call", THURSDAY, 14.5, 15.5, show_as="tentative")
    appointment(bob, "Reading time", THURSDAY, 15.5, 17, show_as="free")
    response = client_for(bob).get("/calendar/find-a-time/", {
        "people": [str(bob.pk), str(alice.pk)], "minutes": "60", "date": THURSDAY.isoformat()})
    assert response.status_code == 200
    page = text(response)
    slots = re.findall(r'<span class="cal-slot-when">([^<]+)</span> <span class="muted">([^<]+)</span>', page)
    assert slots[:3] == [("Thu, Jun 5, 12:00 PM\u20131:00 PM", "free until 1:00 PM"),
                         ("Thu, Jun 5, 3:30 PM\u20134:30 PM", "free until 5:00 PM"),
                         ("Fri, Jun 6, 8:00 AM\u20139:00 AM", "free until 5:00 PM")]
    assert "Dentist" not in page and "vendor" not in page


def test_find_a_time_refuses_bad_input_with_a_clear_message(bob: User, carol: User) -> None:
    client = client_for(bob)
    response = client.get("/calendar/find-a-time/", {"people": [str(bob.pk)], "minutes": "7"})
    assert response.status_code == 400 and "Choose a length from the list." in text(response)
    response = client.get("/calendar/find-a-time/", {"people": [str(carol.pk)], "minutes": "60"})
    assert response.status_code == 400 and "not a person of your company" in text(response)
    assert "Free for everyone" not in text(response)
    first = client.get("/calendar/find-a-time/")
    assert first.status_code == 200 and "Free for everyone" not in text(first)
