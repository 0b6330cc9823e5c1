"""Unmatched mail from a stranger: "Create contact" (the sender's name and address, editable) and
"Add this address to an existing contact" both file this email and every other unmatched email
from that address at once, within the company only."""

from __future__ import annotations

import html
from typing import Any

from accounts.models import User
from activities.models import Activity
from crm.models import Contact, ContactEmail
from tests.activities.emails import make_email
from tests.conftest import client_for


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def stranger_mail(owner: User, count: int, address: str = "Jordan.Reyes@Northfield.example") -> list[Activity]:
    return [make_email(owner, subject=f"Gutter question {n}", from_name="Jordan Reyes", from_address=address,
                       text="Can you clean our gutters?") for n in range(count)]


def test_create_contact_from_unmatched_files_every_email_from_the_address(
    bob: User, alice: User, carol: User,
) -> None:
    mine = stranger_mail(bob, 3)
    alices = stranger_mail(alice, 1, address="jordan.reyes@northfield.example")
    other_sender = make_email(bob, subject="Mulch", from_address="someone@else.example")
    elsewhere = stranger_mail(carol, 1)  # the same address at another company
    client = client_for(bob)

    page = page_text(client.get(f"/activities/{mine[0].pk}/"))
    assert "Create contact" in page
    assert 'name="first_name" value="Jordan"' in page and 'name="last_name" value="Reyes"' in page
    assert 'name="address" value="jordan.reyes@northfield.example"' in page
    assert "Add jordan.reyes@northfield.example to this contact" in page

    response = client.post(f"/activities/{mine[0].pk}/contacts/new/", {
        "first_name": "Jordan", "last_name": "Reyes-Ortiz", "company_name": "Northfield HOA",
        "address": "jordan.reyes@northfield.example",
    }, follow=True)
    assert "Jordan Reyes-Ortiz is a contact now. This email and 3 others from the same address are filed on them." \
        in page_text(response)
    contact = Contact.objects.get(last_name="Reyes-Ortiz")
    assert contact.company_id == bob.company_id and contact.company_name == "Northfield HOA"
    assert list(contact.emails.values_list("address", "is_primary")) == [("jordan.reyes@northfield.example", True)]
    for activity in [*mine, *alices]:
        activity.refresh_from_db()
        assert activity.filed and list(activity.contacts.all()) == [contact]
    assert not Activity.objects.get(pk=other_sender.pk).filed
    assert not Activity.objects.get(pk=elsewhere[0].pk).filed  # Summit's mail stays Summit's
    assert "Gutter question 1" in page_text(client.get(f"/contacts/{contact.pk}/"))
    assert "Gutter question" not in page_text(client.get("/activities/unmatched/"))


def test_add_the_address_to_an_existing_contact(bob: User, contact: Contact) -> None:
    mail = stranger_mail(bob, 2, address="dana.home@example.net")
    client = client_for(bob)
    response = client.post(f"/activities/{mail[0].pk}/contacts/", {"contact": str(contact.pk), "add_address": "1"},
                           follow=True)
    assert "has this address now. This email and 1 other from the same address are filed on them." \
        in page_text(response)
    assert ContactEmail.objects.filter(contact=contact, address="dana.home@example.net", is_primary=False).exists()
    for activity in mail:
        activity.refresh_from_db()
        assert list(activity.contacts.all()) == [contact]
    # Once more: the address is not added twice.
    client.post(f"/activities/{mail[0].pk}/contacts/", {"contact": str(contact.pk), "add_address": "1"})
    assert ContactEmail.objects.filter(contact=contact, address="dana.home@example.net").count() == 1


def test_bad_input_is_refused_with_a_message_and_changes_nothing(bob: User, carol: User) -> None:
    [activity] = stranger_mail(bob, 1)
    client = client_for(bob)
    for fields, message in (
        ({"first_name": "Jordan", "address": "not an address"}, "is not a valid email address"),
        ({"first_name": " ", "last_name": "", "address": "jordan@northfield.example"}, "Give the contact a name"),
    ):
        page = page_text(client.post(f"/activities/{activity.pk}/contacts/new/", fields, follow=True))
        assert message in page
    assert not Contact.objects.filter(company=bob.company, first_name="Jordan").exists()
    activity.refresh_from_db()
    assert not activity.filed
    # Another company's user can neither create from nor file Greenleaf's mail; nor add to its contacts.
    outsider = client_for(carol)
    assert outsider.post(f"/activities/{activity.pk}/contacts/new/", {
        "first_name": "X", "address": "x@example.com"}).status_code == 404
    carols_contact = Contact.objects.create(company=carol.company, first_name="Cara")
    assert client.post(f"/activities/{activity.pk}/contacts/", {
        "contact": str(carols_contact.pk), "add_address": "1"}).status_code == 404
    assert not ContactEmail.objects.filter(contact=carols_contact).exists()
    assert client.get(f"/activities/{activity.pk}/contacts/new/").status_code == 405


def test_create_contact_refuses_a_nul_character_in_a_name_with_a_message(bob: User) -> None:
    mail = stranger_mail(bob, 1)
    client = client_for(bob)
    for field in ("first_name", "last_name", "company_name"):
        typed = {"first_name": "Jordan", "last_name": "Reyes", "company_name": "",
                 "address": "jordan@northfield.example", field: "Jor\x00dan"}
        response = client.post(f"/activities/{mail[0].pk}/contacts/new/", typed, follow=True)
        assert response.status_code == 200
        assert "Null characters are not allowed." in page_text(response)
    assert not Contact.objects.exists()
    assert not Activity.objects.get(pk=mail[0].pk).filed
