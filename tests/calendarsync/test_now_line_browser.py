"""The current-time line moves with the clock while a calendar page stays open, in a real Chromium
whose clock the test moves (Playwright's fake clock; the server keeps its own time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from accounts.models import User
from tests.calendarsync.test_calendar_browser import sign_in
from tests.calendarsync.test_scheduling_browser import CHICAGO, LAPTOP, next_weekday, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def line_rows(page: Any, column: str) -> list[float]:
    """Where the current-time line stands in each matching column, in grid rows (quarter hours)."""
    return [
        float(row)
        for row in page.locator(column).evaluate_all("""columns => columns.map((column) => {
        const line = column.querySelector(".cal-now");
        if (!line) return -1;
        const rowHeight = column.getBoundingClientRect().height / 96;
        return (line.getBoundingClientRect().top - column.getBoundingClientRect().top) / rowHeight;
    })""")
    ]


def test_the_team_days_now_line_moves_as_the_clock_moves(
    live_server: Any, browser_page: Any, bob: User, alice: User
) -> None:
    bob.time_zone = alice.time_zone = "America/Chicago"
    bob.save(update_fields=["time_zone"])
    alice.save(update_fields=["time_zone"])
    wednesday = next_weekday(2)
    page = browser_page
    refused = watch_csp(page)
    page.set_viewport_size(LAPTOP)
    # Reference: https://playwright.dev/docs/api/class-clock (install, fast_forward)
    page.clock.install(time=dt.datetime.combine(wednesday, dt.time(9), CHICAGO))
    sign_in(page, live_server, bob)
    page.get_by_role("heading", name="My calendar").wait_for()
    page.goto(
        f"{live_server.url}/calendar/team/?view=day&date={wednesday.isoformat()}&people={alice.pk}&people={bob.pk}"
    )
    page.locator(".cal-grid").wait_for()
    # The server drew no line (that day is not its today); the page's clock says 9:00 there.
    assert line_rows(page, ".cal-col") == pytest.approx([36, 36], abs=0.1)

    page.clock.fast_forward("01:30:00")  # the page stays open an hour and a half
    assert line_rows(page, ".cal-col") == pytest.approx([42, 42], abs=0.1)
    page.clock.fast_forward("07:00")  # and seven minutes more: the line moves by the minute
    assert line_rows(page, ".cal-col") == pytest.approx([42 + 7 / 15] * 2, abs=0.1)
    assert page.locator(".cal-now[title='Now']").count() == 2 and refused == []


def test_the_week_grids_now_line_crosses_midnight_into_the_next_days_column(
    live_server: Any, browser_page: Any, bob: User
) -> None:
    bob.time_zone = "America/Chicago"
    bob.save(update_fields=["time_zone"])
    wednesday = next_weekday(2)
    thursday = wednesday + dt.timedelta(days=1)
    page = browser_page
    refused = watch_csp(page)
    page.set_viewport_size(LAPTOP)
    page.clock.install(time=dt.datetime.combine(wednesday, dt.time(23, 50), CHICAGO))
    sign_in(page, live_server, bob)
    page.goto(f"{live_server.url}/calendar/?view=week&date={wednesday.isoformat()}")
    page.locator(".cal-grid").wait_for()
    on_wednesday = f".cal-col[data-date='{wednesday.isoformat()}']"
    on_thursday = f".cal-col[data-date='{thursday.isoformat()}']"
    assert line_rows(page, on_wednesday) == pytest.approx([95 + 5 / 15], abs=0.1)
    assert line_rows(page, on_thursday) == [-1]

    page.clock.fast_forward("15:00")  # 12:05 AM on Thursday
    assert line_rows(page, on_wednesday) == [-1]
    assert line_rows(page, on_thursday) == pytest.approx([5 / 15], abs=0.1)
    assert page.locator(".cal-now").count() == 1 and refused == []
