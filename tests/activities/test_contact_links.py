"""What the contact links imply stays true whichever way they change: an activity on no contact is
in its capturer's Unmatched list (and counted in the top bar), and each link carries its
activity's time, which orders the contact's timeline."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from accounts.models import Company, User
from activities.models import Activity, ActivityContact
from activities.selectors import unmatched_emails
from activities.services import file_on_contact
from crm.models import Contact
from tests.activities.emails import make_email
from tests.conftest import client_for


def assert_links_consistent() -> None:
    for activity in Activity.objects.all():
        links = list(ActivityContact.objects.filter(activity=activity))
        assert activity.filed == bool(links), activity.subject
        assert all(link.occurred_at == activity.occurred_at for link in links), activity.subject


def waiting(user: User) -> list[str]:
    return [activity.subject for activity in unmatched_emails(user)]


def top_bar_count(client: Client) -> int:
    page = client.get("/contacts/").content.decode()
    match = re.search(r'class="nav-count"[^>]*>(\d+)<', page)
    return int(match.group(1)) if match else 0


@pytest.fixture
def dana_and_marcus(greenleaf: Company, contact: Contact) -> tuple[Contact, Contact]:
    return contact, Contact.objects.create(company=greenleaf, first_name="Marcus", last_name="Lee")


def test_every_way_of_filing_and_unfiling_keeps_the_unmatched_list_true(
    bob: User, dana_and_marcus: tuple[Contact, Contact]
) -> None:
    dana, marcus = dana_and_marcus
    client = client_for(bob)
    fence = make_email(bob, subject="Fence estimate")
    mulch = make_email(bob, subject="Mulch", contacts=[dana])
    gate = make_email(bob, subject="Gate code")
    assert waiting(bob) == ["Gate code", "Fence estimate"]  # newest first
    assert top_bar_count(client) == 2
    assert_links_consistent()

    file_on_contact(activity=fence, contact=dana)  # the Unmatched page's action
    marcus.activities.add(gate)  # from the contact's side
    assert waiting(bob) == [] and top_bar_count(client) == 0
    assert_links_consistent()

    gate.contacts.remove(marcus)
    assert waiting(bob) == ["Gate code"]
    mulch.contacts.clear()
    assert set(waiting(bob)) == {"Gate code", "Mulch"}
    assert_links_consistent()

    mulch.contacts.set([marcus, dana])
    dana.activities.clear()  # from the contact's side: Fence estimate was on Dana only
    assert set(waiting(bob)) == {"Gate code", "Fence estimate"}
    assert_links_consistent()

    gate.contacts.add(dana)
    dana.delete()  # mail filed only on a deleted contact waits for a contact again
    assert set(waiting(bob)) == {"Gate code", "Fence estimate"}
    assert Activity.objects.get(pk=mulch.pk).filed  # still on Marcus
    assert top_bar_count(client) == 2
    assert_links_consistent()


def test_mail_sent_from_aspire_is_never_unmatched(bob: User) -> None:
    make_email(bob, subject="Proposal", origin=Activity.Origin.SENT_FROM_ASPIRE)
    assert waiting(bob) == []


def test_moving_an_activity_in_time_moves_it_on_the_contacts_timeline(bob: User, contact: Contact) -> None:
    start = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    first = make_email(bob, subject="First", contacts=[contact], occurred_at=start)
    make_email(bob, subject="Second", contacts=[contact], occurred_at=start + dt.timedelta(hours=1))
    first.occurred_at = start + dt.timedelta(hours=2)
    first.save()
    assert_links_consistent()
    page = client_for(bob).get(contact.get_absolute_url()).content.decode()
    assert page.index("First") < page.index("Second")


def test_the_admin_files_an_email_on_a_contact_of_its_company_only(
    alice: User, bob: User, contact: Contact, summit: Company
) -> None:
    email = make_email(bob, subject="Fence estimate")
    outsider = Contact.objects.create(company=summit, first_name="Rita", last_name="Vasquez")
    client = client_for(alice)
    url = f"/admin/activities/activity/{email.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200

    def post(contact_id: object) -> Client:
        return client.post(url, {
            "kind": email.kind, "origin": email.origin, "occurred_at_0": email.occurred_at.strftime("%Y-%m-%d"),
            "occurred_at_1": email.occurred_at.strftime("%H:%M:%S"), "subject": email.subject, "body": "",
            "owner": str(bob.pk), "contact_links-TOTAL_FORMS": "1", "contact_links-INITIAL_FORMS": "0",
            "contact_links-MIN_NUM_FORMS": "0", "contact_links-MAX_NUM_FORMS": "1000",
            "contact_links-0-contact": str(contact_id), "contact_links-0-activity": str(email.pk),
        })

    refused = post(outsider.pk)
    assert refused.status_code == 200  # the form again, with an error
    assert not ActivityContact.objects.filter(activity=email).exists()
    saved = post(contact.pk)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert list(Activity.objects.get(pk=email.pk).contacts.all()) == [contact]
    assert waiting(bob) == []
    assert_links_consistent()
