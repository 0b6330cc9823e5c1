"""A person sets their working hours in User Settings, in a real Chromium: a refused day says why
and keeps what was typed; a right one is saved and shaded on their calendar."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("CALENDAR_SCREENSHOTS", "")


def test_set_working_hours_in_user_settings(live_server: Any, browser_page: Any, bob: User) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Email address").first.fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Working hours").wait_for()
    hours = page.locator("#working-hours")
    assert hours.get_by_label("Friday").is_checked() and not hours.get_by_label("Saturday").is_checked()
    assert hours.get_by_label("Day starts").input_value() == "08:00"

    hours.get_by_label("Friday").uncheck()
    hours.get_by_label("Day starts").fill("15:00")
    hours.get_by_label("Day ends").fill("09:00")
    page.locator(".form-foot").get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert").first
    assert "Day ends: The working day must end after it starts." in alert.inner_text()
    assert not page.locator("#working-hours").get_by_label("Friday").is_checked()  # as typed, not as saved
    bob.refresh_from_db()
    assert bob.work_end == dt.time(17)

    hours = page.locator("#working-hours")
    hours.get_by_label("Day starts").fill("07:30")
    hours.get_by_label("Day ends").fill("15:30")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "settings-working-hours.png"), full_page=True)
    page.locator(".form-foot").get_by_role("button", name="Save").click()
    page.get_by_text("Your settings are saved.").wait_for()
    bob.refresh_from_db()
    assert (bob.work_days, bob.work_start, bob.work_end) == ([0, 1, 2, 3], dt.time(7, 30), dt.time(15, 30))
    assert page.locator("#working-hours").get_by_label("Day ends").input_value() == "15:30"
