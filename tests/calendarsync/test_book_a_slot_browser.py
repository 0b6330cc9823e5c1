"""Find a time, Book this slot, Save: the appointment is at the provider at the slot's time, with the
colleagues it was found for invited; in a real Chromium, against the sandbox."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from accounts.models import Company, User
from accounts.services import set_working_hours
from calendarsync.models import Appointment
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import event_start, provider_events, sync
from tests.calendarsync.test_calendar_browser import sign_in
from tests.calendarsync.test_invitations import attendees_at_provider, invitations
from tests.calendarsync.test_scheduling_browser import next_weekday
from tests.conftest import PASSWORD
from tests.mailboxes import connected_mailbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def test_book_a_slot_found_for_a_colleague_with_a_short_day(
    live_server: Any, browser_page: Any, providers_on_sandbox: SandboxProcess, bob: User, alice: User
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    tuesday = next_weekday(1)
    # Alice works Tuesdays only, 1 to 3: the only time she and Bob can meet that week.
    set_working_hours(user=alice, days=[1], start=dt.time(13), end=dt.time(15))
    start = dt.datetime.combine(tuesday, dt.time(13), CHICAGO)

    page = browser_page
    sign_in(page, live_server, bob)
    page.get_by_role("link", name="Find a time").click()
    page.get_by_role("heading", name="Find a time").wait_for()
    page.get_by_label("Alice Admin").check()
    page.get_by_label("How long").select_option(label="1 hour")
    page.get_by_label("From").fill(tuesday.isoformat())
    page.get_by_role("button", name="Find a time").click()
    page.get_by_role("heading", name="Free for everyone").wait_for()
    assert "Alice Admin: Tue, 1:00 PM\u20133:00 PM (America/Chicago)" in page.locator(".cal-slots").inner_text()
    first = page.locator(".cal-slot").first
    assert f"{tuesday:%a, %b} {tuesday.day}, 1:00 PM\u20132:00 PM" in first.inner_text()

    first.get_by_role("link", name="Book this slot").click()
    page.get_by_role("heading", name="New appointment").wait_for()
    assert page.get_by_label("Title").input_value() == "Meeting with Alice Admin"
    assert page.get_by_label("Date").input_value() == tuesday.isoformat()
    assert page.get_by_label("Starts").input_value().startswith("13:00")
    assert page.get_by_label("Ends").input_value().startswith("14:00")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    appointment = Appointment.objects.get(owner=bob)
    assert (appointment.start, appointment.end) == (start, start + dt.timedelta(hours=1))

    sync(connection)
    (event,) = provider_events(providers_on_sandbox, connection)
    assert event["subject"] == "Meeting with Alice Admin"
    assert event_start(event) == start
    assert event_start({"start": event["end"]}) == start + dt.timedelta(hours=1)


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_book_a_slot_for_two_colleagues_invites_them_both(
    provider: str, live_server: Any, browser_page: Any, providers_on_sandbox: SandboxProcess, bob: User,
    alice: User, greenleaf: Company,
) -> None:
    erin = User.objects.create_user("erin@greenleaf.example", PASSWORD, full_name="Erin Estimator", company=greenleaf)
    connection = connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    tuesday = next_weekday(1)
    set_working_hours(user=alice, days=[1], start=dt.time(13), end=dt.time(15))
    start = dt.datetime.combine(tuesday, dt.time(13), CHICAGO)

    page = browser_page
    sign_in(page, live_server, bob)
    page.get_by_role("link", name="Find a time").click()
    page.get_by_role("heading", name="Find a time").wait_for()
    page.get_by_label("Alice Admin").check()
    page.get_by_label("Erin Estimator").check()
    page.get_by_label("How long").select_option(label="1 hour")
    page.get_by_label("From").fill(tuesday.isoformat())
    page.get_by_role("button", name="Find a time").click()
    page.get_by_role("heading", name="Free for everyone").wait_for()
    page.locator(".cal-slot").first.get_by_role("link", name="Book this slot").click()

    page.get_by_role("heading", name="New appointment").wait_for()
    assert page.get_by_label("Title").input_value() == "Meeting with Alice Admin and Erin Estimator"
    assert page.get_by_label("Alice Admin · alice@greenleaf.example").is_checked()
    assert page.get_by_label("Erin Estimator · erin@greenleaf.example").is_checked()
    assert page.get_by_label("Send invitations").is_checked()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    appointment = Appointment.objects.get(owner=bob)
    assert (appointment.start, appointment.end) == (start, start + dt.timedelta(hours=1))
    assert set(appointment.colleagues.all()) == {alice, erin}

    sync(connection)
    (event,) = provider_events(providers_on_sandbox, connection)
    assert event_start(event) == start
    assert attendees_at_provider(providers_on_sandbox, connection) == ["alice@greenleaf.example",
                                                                       "erin@greenleaf.example"]
    assert invitations(providers_on_sandbox, connection) == 2
