"""A person plans their week in the calendar, on a phone and on a laptop, in a real Chromium."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from calendarsync.models import Appointment
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
SHOTS = os.environ.get("CALENDAR_SCREENSHOTS", "")  # a directory, to look at the pages


def sign_in(page: Any, live_server: Any, user: User) -> None:
    page.goto(live_server.url + "/calendar/")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_plan_a_week_and_see_a_colleagues_private_calendar(
    live_server: Any, browser_page: Any, bob: User, alice: User
) -> None:
    today = timezone.now().astimezone(CHICAGO).date()
    MailboxConnection.objects.create(user=alice, company=alice.company, provider="microsoft",
                                     mailbox_address=alice.email, state="connected", sync_calendar=True,
                                     calendar_privacy="private")
    for offset, hour, title in ((0, 8, "Crew dispatch"), (1, 13, "Irrigation audit"), (2, 10, "Owner lunch")):
        start = dt.datetime.combine(today + dt.timedelta(days=offset), dt.time(hour), CHICAGO)
        Appointment.objects.create(company=alice.company, owner=alice, title=title, location="Main office",
                                   start=start, end=start + dt.timedelta(hours=1), origin="provider",
                                   provider_event_id=f"evt-{offset}", time_zone="America/Chicago")
    start = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(7), CHICAGO)
    Appointment.objects.create(company=bob.company, owner=bob, title="Weekly crew meeting", start=start,
                               end=start + dt.timedelta(minutes=30), origin="provider", provider_event_id="s1_x",
                               series_id="s1", time_zone="America/Chicago")

    page = browser_page
    sign_in(page, live_server, bob)
    page.get_by_role("heading", name="My calendar").wait_for()
    page.get_by_role("link", name="New appointment").click()
    page.get_by_label("Title").fill("Spring cleanup estimate")
    page.get_by_label("Date").fill((today + dt.timedelta(days=1)).isoformat())
    page.get_by_label("Starts").fill("09:30")
    page.get_by_label("Ends").fill("10:30")
    page.get_by_label("Location").fill("1402 Cedar Bend Dr, Austin")
    assert "create them in Outlook or Google Calendar" in page.content()
    assert no_sideways_scroll(page)
    shot(page, "phone-new-appointment")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    item = page.locator(".cal-item", has_text="Spring cleanup estimate")
    assert "9:30 AM\u201310:30 AM" in item.inner_text()
    assert no_sideways_scroll(page)
    shot(page, "phone-week")

    item.get_by_role("link").click()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Spring cleanup estimate, front and back")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    assert page.locator(".cal-item", has_text="front and back").count() == 1

    page.locator(".cal-item", has_text="Weekly crew meeting").get_by_role("link").click()
    page.get_by_text("read-only here").first.wait_for()
    assert page.get_by_role("link", name="Edit").count() == 0

    page.goto(live_server.url + "/calendar/")
    page.get_by_label("Calendar of").select_option(label="Alice Admin")
    page.get_by_role("heading", name="Alice Admin\u2019s calendar").wait_for()
    week = page.locator(".cal-days").inner_text()
    assert "Busy" in week and "Irrigation audit" not in week and "Main office" not in week
    shot(page, "phone-colleague-private")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/calendar/?view=week")
    page.get_by_role("heading", name="My calendar").wait_for()
    assert no_sideways_scroll(page)
    # A laptop shows the week as an hour grid, a column per day; the agenda list is the phone's.
    assert page.locator(".cal-grid .cal-col").count() == 7 and page.locator(".cal-grid").is_visible()
    assert not page.locator(".cal-days").is_visible()
    shot(page, "laptop-week")
    page.goto(live_server.url + "/calendar/?view=month")
    assert no_sideways_scroll(page)
    shot(page, "laptop-month")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/calendar/?view=month")
    assert no_sideways_scroll(page)
    shot(page, "phone-month")
