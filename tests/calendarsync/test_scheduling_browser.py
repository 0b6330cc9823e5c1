"""Scheduling from the calendar in a real Chromium: the week grid, the team view and Find a time."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from calendarsync.models import Appointment
from tests.calendarsync.test_calendar_browser import no_sideways_scroll, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
LAPTOP = {"width": 1280, "height": 900}


def next_weekday(weekday: int) -> dt.date:
    """A coming day of the week (Monday is 0), at least two days ahead so "now" is never in the way."""
    day = timezone.now().astimezone(CHICAGO).date() + dt.timedelta(days=2)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def appointment(owner: User, title: str, day: dt.date, start: float, end: float, **fields: object) -> Appointment:
    def at(hour: float) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60)), CHICAGO)

    return Appointment.objects.create(company=owner.company, owner=owner, title=title, start=at(start), end=at(end),
                                      time_zone="America/Chicago", origin="provider",
                                      provider_event_id=f"evt-{title}", **fields)


def watch_csp(page: Any) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    return refused


def test_the_week_grid_shows_overlapping_appointments_side_by_side(live_server: Any, browser_page: Any,
                                                                   bob: User) -> None:
    thursday = next_weekday(3)
    appointment(bob, "Estimate walk-through", thursday, 9, 11)
    appointment(bob, "Irrigation check", thursday, 10, 12)
    appointment(bob, "Crew lunch", thursday, 13, 14)
    page = browser_page
    refused = watch_csp(page)
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server, bob)
    page.goto(f"{live_server.url}/calendar/?view=week&date={thursday.isoformat()}")
    page.wait_for_load_state("load")
    first = page.locator(".cal-grid .cal-block", has_text="Estimate walk-through").bounding_box()
    second = page.locator(".cal-grid .cal-block", has_text="Irrigation check").bounding_box()
    lunch = page.locator(".cal-grid .cal-block", has_text="Crew lunch").bounding_box()
    # Side by side: the second starts to the right of the first, and they share an hour of height.
    assert first["x"] + first["width"] <= second["x"] + 1
    assert second["y"] < first["y"] + first["height"]
    assert abs(second["y"] - first["y"] - first["height"] / 2) < 2  # 10:00 is half way down 9-11
    # Alone, lunch takes the day's full width, below both.
    assert lunch["width"] > first["width"] * 1.8 and lunch["y"] >= second["y"] + second["height"] - 1
    # The hours open at the working day's start; before 8 is a scroll away.
    assert page.evaluate("document.querySelector('.cal-scroll').scrollTop") > 0
    assert no_sideways_scroll(page)
    assert refused == []
    shot(page, "laptop-week-grid")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the agenda list
    page.reload()
    assert not page.locator(".cal-grid").is_visible()
    assert page.locator(".cal-days .cal-item", has_text="Irrigation check").is_visible()
    assert no_sideways_scroll(page)


def test_the_team_view_shows_a_private_colleague_as_busy_blocks_only(live_server: Any, browser_page: Any,
                                                                    bob: User, alice: User) -> None:
    thursday = next_weekday(3)
    MailboxConnection.objects.create(user=alice, company=alice.company, provider="microsoft",
                                     mailbox_address=alice.email, state="connected", sync_calendar=True,
                                     calendar_privacy="private")
    appointment(alice, "Dentist for Alice", thursday, 13, 14, location="Elm St clinic")
    appointment(bob, "Estimate walk-through", thursday, 9, 10)
    page = browser_page
    refused = watch_csp(page)
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server, bob)
    page.get_by_role("link", name="Team view").click()
    page.get_by_role("heading", name="Team view").wait_for()
    page.goto(f"{live_server.url}/calendar/team/?date={thursday.isoformat()}")
    page.get_by_label("Alice Admin").check()
    page.get_by_label("Me (Bob Staff)").check()
    page.get_by_role("button", name="Show").click()
    page.locator(".cal-grid").wait_for()
    alice_column = page.locator(".cal-col[aria-label='Alice Admin']")
    busy = alice_column.locator(".cal-block")
    assert busy.count() == 1 and "Busy" in busy.inner_text() and "1:00 PM" in busy.inner_text()
    assert busy.evaluate("el => el.tagName") == "DIV"  # no link to open: nothing to read
    assert "Estimate walk-through" in page.locator(".cal-col[aria-label='Bob Staff']").inner_text()
    source = page.content()
    assert "Dentist" not in source and "Elm St" not in source
    assert no_sideways_scroll(page) and refused == []
    shot(page, "laptop-team-day")
    page.get_by_role("link", name="Week").click()
    page.locator(".cal-team-week").wait_for()
    assert "Dentist" not in page.content() and "Busy" in page.locator(".cal-team-week").inner_text()


def test_find_a_time_proposes_a_slot_free_for_everyone(live_server: Any, browser_page: Any, bob: User,
                                                       alice: User) -> None:
    tuesday = next_weekday(1)
    MailboxConnection.objects.create(user=alice, company=alice.company, provider="google",
                                     mailbox_address=alice.email, state="connected", sync_calendar=True,
                                     calendar_privacy="private")
    # Bob is out until noon; Alice is busy 12-1:30 (private to Bob) and tentative 3-5.
    appointment(bob, "Site visits", tuesday, 8, 12)
    appointment(alice, "Dentist", tuesday, 12, 13.5)
    appointment(alice, "Maybe: vendor call", tuesday, 15, 17, show_as="tentative")
    page = browser_page
    refused = watch_csp(page)
    sign_in(page, live_server, bob)
    page.get_by_role("link", name="Find a time").click()
    page.get_by_role("heading", name="Find a time").wait_for()
    page.get_by_label("Alice Admin").check()
    assert page.get_by_label("Me (Bob Staff)").is_checked()
    page.get_by_label("How long").select_option(label="1 hour")
    page.get_by_label("From").fill(tuesday.isoformat())
    page.get_by_role("button", name="Find a time").click()
    page.get_by_role("heading", name="Free for everyone").wait_for()
    first = page.locator(".cal-slot").first.inner_text()
    assert f"{tuesday:%a, %b} {tuesday.day}, 1:30 PM\u20132:30 PM" in first and "free until 3:00 PM" in first
    assert "Dentist" not in page.content() and "vendor" not in page.content()
    assert no_sideways_scroll(page) and refused == []
    shot(page, "phone-find-a-time")
    page.locator(".cal-slot").first.get_by_role("link", name="See the day").click()
    page.get_by_role("heading", name="Team view").wait_for()
    assert page.locator(".cal-team-week, .cal-grid").count() == 1
