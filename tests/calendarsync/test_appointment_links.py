"""Appointments that belong to the CRM: contacts (several, of the user's company only), a Regarding
through the one registry, "New appointment" on a record's page, the Activity on the contacts'
timelines, and "Send invitations" (off unless chosen)."""

from __future__ import annotations

import html
import re

from accounts.models import Company, User
from activities.models import Activity
from calendarsync.models import Appointment
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from tests.conftest import client_for


def form(**fields: object) -> dict[str, object]:
    return {"title": "Estimate walk-through", "date": "2026-12-02", "start_time": "09:00", "end_time": "10:00",
            "location": "", "notes": "", "show_as": "busy", **fields}


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def second_contact(company: Company, prop: Property) -> Contact:
    contact = Contact.objects.create(company=company, first_name="Sam", last_name="Whitfield")
    ContactEmail.objects.create(company=company, contact=contact, address="sam@example.com", is_primary=True)
    prop.contacts.add(contact)
    return contact


def test_a_property_page_offers_new_appointment_with_its_contacts_and_address(
    bob: User, prop: Property, contact: Contact
) -> None:
    sam = second_contact(prop.company, prop)
    client = client_for(bob)
    page = text(client.get(prop.get_absolute_url()))
    assert f"/calendar/appointments/new/?regarding=property%3A{prop.pk}" in page
    new = text(client.get("/calendar/appointments/new/", {"regarding": f"property:{prop.pk}"}))
    assert 'value="1402 Cedar Bend Dr, Austin, TX 78758"' in new  # the address as the default location
    assert f'value="{contact.pk}"' in new and f'value="{sam.pk}"' in new
    assert f'<option value="property:{prop.pk}" selected>Property: Whitfield Residence</option>' in new


def test_contacts_and_regarding_make_one_activity_on_each_contacts_timeline(
    bob: User, alice: User, prop: Property, contact: Contact
) -> None:
    sam = second_contact(prop.company, prop)
    client = client_for(bob)
    response = client.post("/calendar/appointments/new/?regarding=property:" + str(prop.pk),
                           form(contacts=[str(contact.pk), str(sam.pk)], regarding=f"property:{prop.pk}"))
    assert response.status_code == 302
    appointment = Appointment.objects.get(owner=bob)
    activity = Activity.objects.get(appointment=appointment)
    assert set(activity.contacts.all()) == {contact, sam} and activity.regarding == prop
    assert not appointment.invite and appointment.attendees == []  # nobody is emailed unless chosen
    for person in (contact, sam):
        assert "Appointment" in text(client_for(alice).get(person.get_absolute_url()))
    detail = text(client.get(f"/calendar/appointments/{appointment.pk}/"))
    assert "Dana Whitfield" in detail and "Sam Whitfield" in detail and "Whitfield Residence" in detail

    # Edited: one contact fewer and a work ticket instead; the same Activity follows.
    ticket = WorkTicket.objects.create(company=prop.company, number=77, property=prop)
    assert client.post(f"/calendar/appointments/{appointment.pk}/edit/",
                       form(contacts=[str(sam.pk)], regarding=f"work-ticket:{ticket.pk}")).status_code == 302
    activity.refresh_from_db()
    assert list(activity.contacts.all()) == [sam] and activity.regarding == ticket
    # And with nobody and nothing left it is no Activity any more.
    assert client.post(f"/calendar/appointments/{appointment.pk}/edit/", form()).status_code == 302
    assert not Activity.objects.filter(pk=activity.pk).exists()


def test_contacts_can_be_found_and_added_by_search(bob: User, contact: Contact) -> None:
    client = client_for(bob)
    found = text(client.post("/calendar/appointments/new/", form(contact_q="dana", find="contacts")))
    assert f'value="{contact.pk}"' in found and "Dana Whitfield · dana@example.com" in found
    assert not Appointment.objects.exists()  # a search saves nothing
    assert 'value="Estimate walk-through"' in found  # and keeps what was typed


def test_another_companys_contact_or_record_is_refused(bob: User, carol: User, contact: Contact) -> None:
    outsider = Contact.objects.create(company=carol.company, first_name="Olive", last_name="Outsider")
    foreign_property = Property.objects.create(company=carol.company, name="Summit HQ", street="1 Peak Rd",
                                               city="Denver")
    client = client_for(bob)
    page = text(client.post("/calendar/appointments/new/", form(contacts=[str(contact.pk), str(outsider.pk)])))
    assert "Select a valid choice" in page and "Olive" not in page
    page = text(client.post("/calendar/appointments/new/", form(regarding=f"property:{foreign_property.pk}")))
    assert "Select a valid choice" in page and "Summit HQ" not in page
    assert not Appointment.objects.exists() and not Activity.objects.exists()
    assert client.get("/calendar/appointments/new/", {"contact": str(outsider.pk)}).status_code == 404


def test_inviting_needs_a_contact_with_an_address(bob: User, greenleaf: Company) -> None:
    nobody = Contact.objects.create(company=greenleaf, first_name="No", last_name="Email")
    page = text(client_for(bob).post("/calendar/appointments/new/", form(contacts=[str(nobody.pk)], invite="on")))
    assert "nobody to invite" in page and not Appointment.objects.exists()


def test_a_contact_page_fills_in_the_contact_and_offers_their_records(
    bob: User, contact: Contact, opportunity: Opportunity
) -> None:
    client = client_for(bob)
    assert f"/calendar/appointments/new/?contact={contact.pk}" in text(client.get(contact.get_absolute_url()))
    new = text(client.get("/calendar/appointments/new/", {"contact": str(contact.pk)}))
    assert re.search(rf'<input type="checkbox" name="contacts" value="{contact.pk}"[^>]* checked', new)
    assert f'<option value="opportunity:{opportunity.pk}">Opportunity: Spring mulch</option>' in new


def test_the_form_from_a_property_costs_the_same_queries_for_2_or_30_contacts(bob: User, prop: Property) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(bob)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/calendar/appointments/new/", {"regarding": f"property:{prop.pk}"}).status_code == 200
        return len(captured.captured_queries)

    second_contact(prop.company, prop)  # with the fixture's Dana: 2 contacts
    few = queries()
    for n in range(28):
        extra = Contact.objects.create(company=prop.company, first_name=f"Neighbour {n}")
        prop.contacts.add(extra)
    assert queries() == few
