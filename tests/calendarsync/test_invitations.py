"""Invitations: sent by the provider only when the user chose "Send invitations", the attendees'
answers synced back, never an invitation or update from importing or re-syncing, and events the
user only attends shown with their organiser and the user's answer, read-only."""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from calendarsync.models import ATTENDING_MESSAGE, Appointment, CalendarSyncState
from calendarsync.services import AppointmentInput, create_appointment, update_appointment
from crm.models import Contact, ContactEmail, Property
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import make_event, provider_events, sync
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


@pytest.fixture(params=["microsoft", "google"])
def bob_calendar(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    return connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")


@pytest.fixture
def sam(prop: Property) -> Contact:
    sam = Contact.objects.create(company=prop.company, first_name="Sam", last_name="Whitfield")
    ContactEmail.objects.create(company=prop.company, contact=sam, address="sam@example.com", is_primary=True)
    prop.contacts.add(sam)
    return sam


def walkthrough(invite: bool, title: str = "Estimate walk-through") -> AppointmentInput:
    start = dt.datetime.combine(timezone.localdate() + dt.timedelta(days=3), dt.time(10), CHICAGO)
    return AppointmentInput(title=title, start=start, end=start + dt.timedelta(hours=1),
                            time_zone="America/Chicago", location="1402 Cedar Bend Dr", invite=invite)


def invitations(sandbox: SandboxProcess, connection: MailboxConnection) -> int:
    counters: dict[str, Any] = sandbox.control("GET", "/counters")["counters"]
    return int(counters.get(connection.mailbox_address, {}).get("invitations", 0))


def attendees_at_provider(sandbox: SandboxProcess, connection: MailboxConnection) -> list[str]:
    (event,) = provider_events(sandbox, connection)
    people = event.get("attendees") or []
    return sorted((p["emailAddress"]["address"] if "emailAddress" in p else p["email"]).lower() for p in people
                  if not p.get("organizer"))


def respond(sandbox: SandboxProcess, connection: MailboxConnection, event_id: str, attendee: str,
            response: str) -> None:
    sandbox.control("POST", f"/accounts/{connection.provider}/{connection.mailbox_address}/events/{event_id}/respond",
                    json={"attendee": attendee, "response": response})


def test_invited_contacts_get_the_providers_invitation_and_their_answers_come_back(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact,
    sam: Contact, prop: Property,
) -> None:
    appointment = create_appointment(owner=bob, data=walkthrough(invite=True), contacts=[contact, sam], regarding=prop)
    sync(bob_calendar)
    assert attendees_at_provider(providers_on_sandbox, bob_calendar) == ["dana@example.com", "sam@example.com"]
    assert invitations(providers_on_sandbox, bob_calendar) == 2

    appointment.refresh_from_db()
    respond(providers_on_sandbox, bob_calendar, appointment.provider_event_id, "dana@example.com", "accepted")
    respond(providers_on_sandbox, bob_calendar, appointment.provider_event_id, "sam@example.com", "tentative")
    sync(bob_calendar)
    appointment.refresh_from_db()
    answers = {person[1]: person[2] for person in appointment.attendees}
    assert answers == {"dana@example.com": "accepted", "sam@example.com": "tentative"}
    page = html.unescape(client_for(bob).get(f"/calendar/appointments/{appointment.pk}/").content.decode())
    assert "Dana Whitfield <span class=\"muted\">Accepted" in page
    assert "Sam Whitfield <span class=\"muted\">Tentative" in page
    assert invitations(providers_on_sandbox, bob_calendar) == 2  # answering mails nobody

    # A change made in Aspire is the organiser's update: the provider tells the guests.
    update_appointment(appointment=appointment, editor=bob, data=walkthrough(invite=True, title="Walk-through"))
    sync(bob_calendar)
    assert invitations(providers_on_sandbox, bob_calendar) == 4
    appointment.refresh_from_db()
    assert {person[1]: person[2] for person in appointment.attendees}["dana@example.com"] == "accepted"


def test_without_invite_nobody_is_mailed_and_the_contacts_are_not_attendees(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, sam: Contact,
) -> None:
    appointment = create_appointment(owner=bob, data=walkthrough(invite=False), contacts=[contact, sam])
    sync(bob_calendar)
    assert attendees_at_provider(providers_on_sandbox, bob_calendar) == []
    update_appointment(appointment=appointment, editor=bob, data=walkthrough(invite=False, title="Moved"))
    sync(bob_calendar)
    assert invitations(providers_on_sandbox, bob_calendar) == 0
    assert appointment.activity is not None and set(appointment.activity.contacts.all()) == {contact, sam}


def test_importing_and_a_full_resync_send_no_invitation(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User, contact: Contact, sam: Contact,
) -> None:
    day = (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    make_event(providers_on_sandbox, bob_calendar, subject="HOA meeting", start=f"{day}T09:00:00",
               end=f"{day}T10:00:00", attendees=["neighbour1@hoa.example", "neighbour2@hoa.example"])
    create_appointment(owner=bob, data=walkthrough(invite=True), contacts=[contact, sam])
    sync(bob_calendar)
    sent = invitations(providers_on_sandbox, bob_calendar)
    assert sent == 2  # the walk-through's, and nothing for the imported meeting

    # A full resync: the cursor lost, the whole window listed again and every event compared.
    providers_on_sandbox.control("POST", f"/accounts/{bob_calendar.provider}/{bob_calendar.mailbox_address}"
                                         "/expire-sync-state")
    CalendarSyncState.objects.filter(connection=bob_calendar).update(full_sync_at=None)
    sync(bob_calendar)
    sync(bob_calendar)
    assert invitations(providers_on_sandbox, bob_calendar) == sent
    assert Appointment.objects.filter(connection=bob_calendar).count() == 2


def test_events_the_user_only_attends_show_the_organiser_and_the_answer_read_only(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User,
) -> None:
    day = (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    make_event(providers_on_sandbox, bob_calendar, subject="Supplier review", start=f"{day}T13:00:00",
               end=f"{day}T14:00:00", organizer="rita@mulchsupply.example", my_response="tentative",
               attendees=["bob@greenleaf.example"])
    sync(bob_calendar)
    appointment = Appointment.objects.get(connection=bob_calendar)
    assert appointment.organizer_address == "rita@mulchsupply.example" and appointment.my_response == "tentative"
    assert not appointment.editable_in_aspire
    client = client_for(bob)
    page = html.unescape(client.get(f"/calendar/appointments/{appointment.pk}/").content.decode())
    assert "rita@mulchsupply.example" in page and "Tentative" in page and ATTENDING_MESSAGE in page
    assert "/edit/" not in page
    feed = client.get("/calendar/feed.json", {"start": f"{day}T00:00:00", "end": f"{day}T23:59:00"}).json()
    (item,) = feed["appointments"]
    assert item["organizer"]["address"] == "rita@mulchsupply.example" and item["my_response"] == "tentative"
    assert item["editable"] is False
    refused = client.get(f"/calendar/appointments/{appointment.pk}/edit/")
    assert refused.status_code == 403 and ATTENDING_MESSAGE in html.unescape(refused.content.decode())


def test_invited_colleagues_are_attendees_and_their_answers_survive_an_edit_and_a_resync(
    bob_calendar: MailboxConnection, providers_on_sandbox: SandboxProcess, bob: User, alice: User, contact: Contact,
) -> None:
    erin = User.objects.create_user("erin@greenleaf.example", "x", full_name="Erin Estimator", company=bob.company)
    appointment = create_appointment(owner=bob, data=walkthrough(invite=True), contacts=[contact],
                                     colleagues=[alice, erin])
    sync(bob_calendar)
    assert attendees_at_provider(providers_on_sandbox, bob_calendar) == [
        "alice@greenleaf.example", "dana@example.com", "erin@greenleaf.example"]
    assert invitations(providers_on_sandbox, bob_calendar) == 3

    appointment.refresh_from_db()
    respond(providers_on_sandbox, bob_calendar, appointment.provider_event_id, "alice@greenleaf.example", "accepted")
    sync(bob_calendar)
    # Erin is no longer needed; Alice's answer stays with her.
    update_appointment(appointment=appointment, editor=bob, data=walkthrough(invite=True, title="Walk-through"),
                       colleagues=[alice])
    appointment.refresh_from_db()
    assert {person[1]: person[2] for person in appointment.attendees} == {
        "alice@greenleaf.example": "accepted", "dana@example.com": ""}
    sync(bob_calendar)
    assert attendees_at_provider(providers_on_sandbox, bob_calendar) == ["alice@greenleaf.example", "dana@example.com"]
    sent = invitations(providers_on_sandbox, bob_calendar)
    assert sent > 3  # the organiser's update goes to the guests

    providers_on_sandbox.control("POST", f"/accounts/{bob_calendar.provider}/{bob_calendar.mailbox_address}"
                                         "/expire-sync-state")
    CalendarSyncState.objects.filter(connection=bob_calendar).update(full_sync_at=None)
    sync(bob_calendar)
    assert invitations(providers_on_sandbox, bob_calendar) == sent  # a resync mails nobody
    appointment.refresh_from_db()
    assert {person[1]: person[2] for person in appointment.attendees}["alice@greenleaf.example"] == "accepted"
    assert list(appointment.colleagues.all()) == [alice]
