"""From a property's page, a New appointment with its two contacts, invited: at the provider with
both as attendees, on both contacts' timelines, and their answers shown after a sync; in a real
Chromium, against the sandbox."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from calendarsync.models import Appointment
from crm.models import Contact, ContactEmail, Property
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import provider_events, sync
from tests.conftest import PASSWORD
from tests.mailboxes import connected_mailbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def sign_in(page: Any, live_server: Any, user: User, path: str) -> None:
    page.goto(live_server.url + path)
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_an_invited_appointment_from_a_property_page(
    provider: str, live_server: Any, browser_page: Any, providers_on_sandbox: SandboxProcess, bob: User,
    prop: Property, contact: Contact,
) -> None:
    sam = Contact.objects.create(company=prop.company, first_name="Sam", last_name="Whitfield")
    ContactEmail.objects.create(company=prop.company, contact=sam, address="sam@example.com", is_primary=True)
    prop.contacts.add(sam)
    connection = connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    day = timezone.now().astimezone(CHICAGO).date() + dt.timedelta(days=2)

    page = browser_page
    sign_in(page, live_server, bob, prop.get_absolute_url())
    page.get_by_role("heading", name="Whitfield Residence").wait_for()
    page.get_by_role("link", name="New appointment").click()
    page.get_by_role("heading", name="New appointment").wait_for()
    assert page.get_by_label("Location").input_value() == "1402 Cedar Bend Dr, Austin, TX 78758"
    assert page.get_by_label("Dana Whitfield · dana@example.com").is_checked()
    assert page.get_by_label("Sam Whitfield · sam@example.com").is_checked()
    assert page.get_by_label("Regarding", exact=True).input_value() == f"property:{prop.pk}"
    assert not page.get_by_label("Send invitations").is_checked()  # off unless chosen
    page.get_by_label("Title").fill("Estimate walk-through")
    page.get_by_label("Date").fill(day.isoformat())
    page.get_by_label("Starts").fill("14:00")
    page.get_by_label("Ends").fill("15:00")
    page.get_by_label("Send invitations").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()

    sync(connection)
    (event,) = provider_events(providers_on_sandbox, connection)
    people = event.get("attendees") or []
    addresses = sorted((p["emailAddress"]["address"] if "emailAddress" in p else p["email"]) for p in people)
    assert addresses == ["dana@example.com", "sam@example.com"]

    for person in (contact, sam):
        page.goto(live_server.url + person.get_absolute_url())
        page.get_by_role("heading", name=person.name).wait_for()
        item = page.locator("article.activity-appointment")
        assert item.count() == 1 and "Regarding Whitfield Residence" in item.inner_text()
        assert "Estimate walk-through" not in page.content()  # details stay on the appointment

    appointment = Appointment.objects.get(owner=bob)
    account = f"/accounts/{provider}/{connection.mailbox_address}/events/{appointment.provider_event_id}/respond"
    providers_on_sandbox.control("POST", account, json={"attendee": "dana@example.com", "response": "accepted"})
    providers_on_sandbox.control("POST", account, json={"attendee": "sam@example.com", "response": "declined"})
    sync(connection)
    page.goto(f"{live_server.url}/calendar/appointments/{appointment.pk}/")
    attendees = page.locator(".cal-attendees li")
    assert attendees.filter(has_text="Dana Whitfield").inner_text().endswith("Accepted")
    assert attendees.filter(has_text="Sam Whitfield").inner_text().endswith("Declined")
    facts = page.locator("dl.facts").inner_text()
    assert "Whitfield Residence" in facts and "Dana Whitfield" in facts


def test_contacts_and_a_regarding_found_as_you_type(
    live_server: Any, browser_page: Any, bob: User, contact: Contact, prop: Property
) -> None:
    page = browser_page
    sign_in(page, live_server, bob, "/calendar/appointments/new/")
    page.get_by_role("heading", name="New appointment").wait_for()
    page.get_by_label("Find contacts").fill("dana")
    page.get_by_label("Dana Whitfield · dana@example.com").check()  # appears as the search answers
    page.get_by_label("Find an opportunity, property or work ticket").fill("cedar bend")
    page.get_by_label("Regarding", exact=True).select_option(f"property:{prop.pk}")
    page.get_by_label("Title").fill("Irrigation check")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    appointment = Appointment.objects.get(owner=bob)
    assert appointment.activity is not None
    assert list(appointment.activity.contacts.all()) == [contact] and appointment.activity.regarding == prop
