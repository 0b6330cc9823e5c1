from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Company
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket


def test_a_contact_has_several_addresses_unique_regardless_of_case(contact: Contact, greenleaf: Company) -> None:
    ContactEmail.objects.create(company=greenleaf, contact=contact, address="dana.work@example.com")
    assert {e.address for e in contact.emails.all()} == {"dana@example.com", "dana.work@example.com"}
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactEmail.objects.create(company=greenleaf, contact=contact, address="DANA@example.com")


def test_work_ticket_numbers_are_unique_within_a_company_only(
    work_ticket: WorkTicket, prop: Property, summit: Company
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkTicket.objects.create(company=prop.company, number=work_ticket.number, property=prop)
    summit_property = Property.objects.create(company=summit, name="Mall", street="1 Main", city="Denver")
    WorkTicket.objects.create(company=summit, number=work_ticket.number, property=summit_property)


def test_an_opportunity_cannot_point_at_another_companys_contact(greenleaf: Company, summit: Company) -> None:
    foreign = Contact.objects.create(company=summit, first_name="Rita")
    opportunity = Opportunity(company=greenleaf, name="Bed refresh", contact=foreign)
    with pytest.raises(ValidationError, match="another company"):
        opportunity.full_clean()


def test_a_property_refuses_another_companys_contact_whatever_the_code_path(prop: Property, summit: Company) -> None:
    foreign = Contact.objects.create(company=summit, first_name="Rita")
    with pytest.raises(ValidationError, match="another company"), transaction.atomic():
        prop.contacts.add(foreign)
    with pytest.raises(ValidationError, match="another company"), transaction.atomic():
        foreign.properties.add(prop)
    assert foreign not in prop.contacts.all()


def test_records_have_uuid_urls(
    contact: Contact, prop: Property, opportunity: Opportunity, work_ticket: WorkTicket
) -> None:
    for record in (contact, prop, opportunity, work_ticket):
        assert str(record.pk) in record.get_absolute_url()
