"""The record pages at length: timelines read page by page by key, lists sorted stably, and text
search that finds each record once, by any part of a field, an address, a number or several words."""

from __future__ import annotations

import datetime as dt
import html
import re

from django.test import Client

from accounts.models import Company, User
from activities.services import create_activity
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from tests.conftest import client_for

START = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def notes_on_page(page: str) -> list[str]:
    return re.findall(r"Note (\d\d)", page)


def link(page: str, label: str) -> str:
    found = re.search(r'<a href="(\?[^"]*)">' + re.escape(label), page)
    assert found, f"no {label!r} link"
    return html.unescape(found.group(1))


def test_a_long_timeline_is_read_by_key_both_ways(bob: User, contact: Contact, greenleaf: Company) -> None:
    # 45 notes, and ties: several at the same minute across the pages' edges.
    for n in range(45):
        create_activity(company=greenleaf, kind="note", subject=f"Note {n:02d}", owner=bob, contacts=[contact],
                        occurred_at=START + dt.timedelta(hours=n // 3))
    client = client_for(bob)
    url = contact.get_absolute_url()
    first = client.get(url).content.decode()
    assert "Page 1 of 3" in first
    older = link(first, "Older")
    assert "before=" in older and "page=2" in older
    second = client.get(url + older).content.decode()
    third = client.get(url + link(second, "Older")).content.decode()
    assert "Page 3 of 3" in third and "Older" not in third
    seen = notes_on_page(first) + notes_on_page(second) + notes_on_page(third)
    assert sorted(seen) == [f"{n:02d}" for n in range(45)]  # every note once: no tie lost or repeated
    assert len(notes_on_page(first)) == len(notes_on_page(second)) == 20
    back = client.get(url + link(third, "← Newer")).content.decode()
    assert "after=" in link(third, "← Newer")
    assert notes_on_page(back) == notes_on_page(second) and "Page 2 of 3" in back
    assert notes_on_page(client.get(url + link(back, "← Newer")).content.decode()) == notes_on_page(first)


def test_a_page_link_with_a_mangled_key_opens_the_timeline_at_its_start(bob: User, contact: Contact,
                                                                       greenleaf: Company) -> None:
    for n in range(25):
        create_activity(company=greenleaf, kind="note", subject=f"Note {n:02d}", owner=bob, contacts=[contact],
                        occurred_at=START + dt.timedelta(days=n))
    client = client_for(bob)
    for key in ("nonsense", "1.2", "99999999999999999999999.00000000000000000000000000000000", ""):
        page = client.get(contact.get_absolute_url(), {"before": key})
        assert page.status_code == 200
        assert notes_on_page(page.content.decode())[0] == "24", key


def test_a_propertys_timeline_rolls_up_its_opportunities_and_work_tickets_only(
    bob: User, prop: Property, opportunity: Opportunity, work_ticket: WorkTicket, greenleaf: Company
) -> None:
    elsewhere = Property.objects.create(company=greenleaf, name="Elsewhere", street="1 Other St", city="Austin")
    other_ticket = WorkTicket.objects.create(company=greenleaf, number=2000, property=elsewhere)
    for subject, regarding in (("On the site", prop), ("On the opportunity", opportunity),
                               ("On the ticket", work_ticket), ("Another site's ticket", other_ticket)):
        create_activity(company=greenleaf, kind="note", subject=subject, owner=bob, regarding=regarding)
    page = client_for(bob).get(prop.get_absolute_url()).content.decode()
    assert all(s in page for s in ("On the site", "On the opportunity", "On the ticket"))
    assert "Another site" not in page
    bare = Property.objects.create(company=greenleaf, name="Bare lot", street="2 Other St", city="Austin")
    assert "No activities yet" in client_for(bob).get(bare.get_absolute_url()).content.decode()


def search(client: Client, path: str, q: str) -> str:
    return client.get(path, {"q": q}).content.decode()


def test_contact_search_finds_each_contact_once_by_address_name_or_words(
    bob: User, contact: Contact, greenleaf: Company, summit: Company
) -> None:
    ContactEmail.objects.create(company=greenleaf, contact=contact, address="dana.w@whitfieldfamily.example")
    Contact.objects.create(company=greenleaf, first_name="Marcus", last_name="Whitley")
    foreign = Contact.objects.create(company=summit, first_name="Dana", last_name="Whitfield")
    ContactEmail.objects.create(company=summit, contact=foreign, address="dana@example.com")
    client = client_for(bob)
    by_address = search(client, "/contacts/", "@WHITFIELDFAMILY")
    assert by_address.count(contact.get_absolute_url()) == 1 and "Whitley" not in by_address
    both_addresses = search(client, "/contacts/", "dana")  # two of Dana's addresses and her name match
    assert both_addresses.count(contact.get_absolute_url()) == 1
    assert foreign.get_absolute_url() not in both_addresses
    assert "Whitley" in search(client, "/contacts/", "whit") and "Whitfield" in search(client, "/contacts/", "whit")
    chooser = client.get("/activities/contact-search/", {"q": "dana whitf"}).json()["results"]
    assert [c["value"] for c in chooser] == [str(contact.pk)]
    assert client.get("/activities/contact-search/", {"q": "dana@example.com"}).json()["results"][0]["value"] == str(
        contact.pk)


def test_record_lists_search_by_any_part_and_tickets_by_number(
    bob: User, prop: Property, opportunity: Opportunity, work_ticket: WorkTicket
) -> None:
    client = client_for(bob)
    assert prop.name in search(client, "/properties/", "cedar bend")
    assert prop.name not in search(client, "/properties/", "bend cedar")  # a list searches the phrase
    assert opportunity.name in search(client, "/opportunities/", "mulch")
    assert opportunity.name in search(client, "/opportunities/", "whitf")  # the contact's name
    assert "#1041" in search(client, "/work-tickets/", "#1041")
    assert "#1041" in search(client, "/work-tickets/", "weekly")
    assert "#1041" in search(client, "/work-tickets/", "whitfield res")  # the property's name
    regarding = client.get("/activities/regarding-search/", {"q": "78758 cedar"}).json()["results"]
    assert [r["value"] for r in regarding] == [f"property:{prop.pk}"]


def test_a_list_sorted_by_name_keeps_ties_in_one_order_across_pages(bob: User, greenleaf: Company) -> None:
    for _ in range(30):
        Contact.objects.create(company=greenleaf, first_name="Sam", last_name="Lee")
    client = client_for(bob)
    pages = [client.get("/contacts/", {"page": n}).content.decode() for n in (1, 2)]
    ids = [re.findall(r'href="/contacts/([0-9a-f-]{36})/"', page) for page in pages]
    assert len(ids[0]) == 25 and len(ids[1]) == 5
    assert len(set(ids[0]) | set(ids[1])) == 30
