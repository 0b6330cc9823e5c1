"""Named actors for every test of access: Alice and Bob work at Greenleaf (Alice is its company
admin), Carol works at Summit, another company. Every record fixture belongs to Greenleaf, so a
test can always ask: and can Carol see it?"""

from __future__ import annotations

import os
from pathlib import Path

# Tests never share the demo's embedded broker folder (settings read this at import).
os.environ.setdefault("CELERY_BROKER_DIR", str(Path(__file__).resolve().parent.parent / ".demo" / "test-broker"))

import pytest  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import Company, User  # noqa: E402
from activities.models import Activity  # noqa: E402
from activities.services import create_activity  # noqa: E402
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket  # noqa: E402

PASSWORD = "correct horse battery staple"


@pytest.fixture
def greenleaf(db: None) -> Company:
    return Company.objects.create(name="Greenleaf Landscaping", time_zone="America/Chicago")


@pytest.fixture
def summit(db: None) -> Company:
    return Company.objects.create(name="Summit Snow & Lawn", time_zone="America/Denver")


@pytest.fixture
def alice(greenleaf: Company) -> User:
    return User.objects.create_user("alice@greenleaf.example", PASSWORD, full_name="Alice Admin",
                                    company=greenleaf, role=User.Role.ADMIN)


@pytest.fixture
def bob(greenleaf: Company) -> User:
    return User.objects.create_user("bob@greenleaf.example", PASSWORD, full_name="Bob Staff", company=greenleaf)


@pytest.fixture
def carol(summit: Company) -> User:
    return User.objects.create_user("carol@summit.example", PASSWORD, full_name="Carol Admin",
                                    company=summit, role=User.Role.ADMIN)


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser("ops@aspire.example", PASSWORD)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def contact(greenleaf: Company) -> Contact:
    contact = Contact.objects.create(company=greenleaf, first_name="Dana", last_name="Whitfield", phone="512-555-0142")
    ContactEmail.objects.create(company=greenleaf, contact=contact, address="dana@example.com", is_primary=True)
    return contact


@pytest.fixture
def prop(greenleaf: Company, contact: Contact) -> Property:
    prop = Property.objects.create(company=greenleaf, name="Whitfield Residence", street="1402 Cedar Bend Dr",
                                   city="Austin", state="TX", postal_code="78758")
    prop.contacts.add(contact)
    return prop


@pytest.fixture
def opportunity(greenleaf: Company, contact: Contact, prop: Property) -> Opportunity:
    return Opportunity.objects.create(company=greenleaf, name="Spring mulch", contact=contact, property=prop)


@pytest.fixture
def work_ticket(greenleaf: Company, prop: Property) -> WorkTicket:
    return WorkTicket.objects.create(company=greenleaf, number=1041, property=prop, description="Weekly mow")


@pytest.fixture
def activity(greenleaf: Company, bob: User, contact: Contact, opportunity: Opportunity) -> Activity:
    return create_activity(company=greenleaf, kind=Activity.Kind.EMAIL, origin=Activity.Origin.CAPTURED,
                           subject="Mulch color", body="Dark brown please", owner=bob, contacts=[contact],
                           regarding=opportunity)
