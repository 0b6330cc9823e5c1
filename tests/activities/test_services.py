from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client

from accounts.models import Company, User
from activities.models import Activity
from activities.services import create_activity, set_regarding
from crm.models import Contact, Opportunity, Property, WorkTicket


def test_the_database_allows_at_most_one_regarding(activity: Activity, prop: Property) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Activity.objects.filter(pk=activity.pk).update(regarding_property=prop)


def test_set_regarding_replaces_the_previous_record(activity: Activity, work_ticket: WorkTicket) -> None:
    set_regarding(activity=activity, regarding=work_ticket)
    activity.refresh_from_db()
    assert activity.regarding == work_ticket
    assert activity.regarding_opportunity is None
    set_regarding(activity=activity, regarding=None)
    activity.refresh_from_db()
    assert activity.regarding is None


def test_services_refuse_another_companys_contact_or_regarding(
    greenleaf: Company, summit: Company, bob: User, activity: Activity
) -> None:
    foreign_contact = Contact.objects.create(company=summit, first_name="Rita")
    foreign_property = Property.objects.create(company=summit, name="Mall", street="1 Main", city="Denver")
    with pytest.raises(ValidationError, match="another company"):
        create_activity(company=greenleaf, kind="note", subject="x", owner=bob, contacts=[foreign_contact])
    with pytest.raises(ValidationError, match="another company"):
        create_activity(company=greenleaf, kind="note", subject="x", owner=bob, regarding=foreign_property)
    with pytest.raises(ValidationError, match="another company"):
        set_regarding(activity=activity, regarding=foreign_property)
    with pytest.raises(ValidationError, match="another company"), transaction.atomic():
        activity.contacts.add(foreign_contact)
    # Nothing half-saved: only the fixture's activity exists, still on its own records.
    assert Activity.objects.count() == 1
    activity.refresh_from_db()
    assert activity.regarding_property is None
    assert foreign_contact not in activity.contacts.all()


def test_timeline_is_newest_first_and_paginated(bob: User, contact: Contact, greenleaf: Company) -> None:
    start = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    for n in range(25):
        create_activity(
            company=greenleaf,
            kind="note",
            subject=f"Note {n:02d}",
            owner=bob,
            contacts=[contact],
            occurred_at=start + dt.timedelta(days=n),
        )
    client = Client()
    client.force_login(bob)
    first = client.get(contact.get_absolute_url()).content.decode()
    assert first.index("Note 24") < first.index("Note 23")
    assert "Note 04" not in first  # 20 a page
    second = client.get(contact.get_absolute_url() + "?page=2").content.decode()
    assert "Note 04" in second and "Note 00" in second and "Note 24" not in second


def test_record_pages_show_their_activities(
    bob: User, activity: Activity, opportunity: Opportunity, prop: Property, work_ticket: WorkTicket, greenleaf: Company
) -> None:
    client = Client()
    client.force_login(bob)
    assert "Mulch color" in client.get(opportunity.get_absolute_url()).content.decode()
    # A property's page rolls up what concerns its opportunities.
    assert "Mulch color" in client.get(prop.get_absolute_url()).content.decode()
    assert "Mulch color" not in client.get(work_ticket.get_absolute_url()).content.decode()
    create_activity(company=greenleaf, kind="note", subject="Gate code 4410", owner=bob, regarding=work_ticket)
    assert "Gate code 4410" in client.get(work_ticket.get_absolute_url()).content.decode()


def test_contact_search_by_name_email_and_phone(bob: User, contact: Contact, greenleaf: Company) -> None:
    Contact.objects.create(company=greenleaf, first_name="Marcus", last_name="Lee")
    client = Client()
    client.force_login(bob)
    for q in ("whitf", "DANA@EXAMPLE", "555-0142"):
        page = client.get("/contacts/", {"q": q}).content.decode()
        assert "Dana Whitfield" in page and "Marcus Lee" not in page, q
    assert "Nothing matches" in client.get("/contacts/", {"q": "zzz"}).content.decode()
