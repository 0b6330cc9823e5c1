"""Find any email: words in the subject, the text, the sender and attachment names, with filters
(contact, Regarding, origin, dates, has an attachment); the company's email only, never an
appointment; pages by key; a constant number of queries."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from activities.models import Activity
from activities.services import create_activity
from crm.models import Contact, Opportunity
from tests.activities.emails import attach, make_email
from tests.conftest import client_for


def subjects(response: Any) -> list[str]:
    return re.findall(r'<span class="mail-subject">([^<]*)</span>', html.unescape(response.content.decode()))


def search(user: User, **params: Any) -> list[str]:
    response = client_for(user).get("/activities/search/", params)
    assert response.status_code == 200
    return subjects(response)


@pytest.fixture
def mail(bob: User, alice: User, carol: User, contact: Contact, opportunity: Opportunity) -> dict[str, Activity]:
    day = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    found = {
        "mulch": make_email(bob, subject="Spring mulch", text="Dark brown mulch for the front beds, please.",
                            contacts=[contact], occurred_at=day),
        "gutters": make_email(alice, subject="Gutter cleaning", text="The downspouts overflow in heavy rain.",
                              from_name="Jordan Reyes", from_address="jordan@northfield.example",
                              occurred_at=day + dt.timedelta(days=10)),
        "invoice": make_email(bob, subject="Invoice 88231", text="Attached is the invoice.", contacts=[contact],
                              origin=Activity.Origin.SENT_FROM_ASPIRE, occurred_at=day + dt.timedelta(days=20),
                              attachment_names=["Site plan.pdf"]),
        "summit": make_email(carol, subject="Summit mulch", text="Mulch at Summit's yard, downspouts too.",
                             occurred_at=day),
    }
    attach(found["invoice"], "Site plan.pdf", b"%PDF-1.4")
    found["mulch"].regarding = opportunity
    found["mulch"].save(update_fields=["regarding_opportunity"])
    # An appointment (a private one, even) that says "mulch" is never an email result.
    create_activity(company=bob.company, kind=Activity.Kind.APPOINTMENT, subject="Mulch delivery",  # type: ignore[arg-type]
                    body="private: mulch", owner=bob)
    return found


def test_words_in_the_body_subject_sender_and_attachment_names(bob: User, mail: dict[str, Activity]) -> None:
    assert search(bob, q="downspouts") == ["Gutter cleaning"]  # a word in the body, Summit's left out
    assert search(bob, q="MULCH") == ["Spring mulch"]  # the subject and body, any case
    assert search(bob, q="Jordan Reyes") == ["Gutter cleaning"]  # the sender's name
    assert search(bob, q="northfield") == ["Gutter cleaning"]  # part of the sender's address
    assert search(bob, q="plan") == ["Invoice 88231"]  # an attachment's name
    assert search(bob, q="mulch -beds") == []
    assert search(bob, q="nothing-like-this") == []
    # What people type is never an error: quotes, operators, punctuation.
    assert search(bob, q='"dark brown" & | ! :* (') == ["Spring mulch"]


def test_filters_narrow_the_results(bob: User, mail: dict[str, Activity], contact: Contact,
                                    opportunity: Opportunity) -> None:
    assert search(bob, contact=str(contact.pk)) == ["Invoice 88231", "Spring mulch"]
    assert search(bob, regarding=f"opportunity:{opportunity.pk}") == ["Spring mulch"]
    assert search(bob, origin="sent") == ["Invoice 88231"]
    assert search(bob, attachment="on") == ["Invoice 88231"]
    assert search(bob, since="2026-03-10", until="2026-03-15") == ["Gutter cleaning"]
    assert search(bob, q="mulch", origin="sent") == []
    page = html.unescape(client_for(bob).get("/activities/search/", {"since": "2026-03-15",
                                                                    "until": "2026-03-10"}).content.decode())
    assert "The last day can't be before the first." in page


def test_only_the_company_and_nothing_of_another(bob: User, carol: User, mail: dict[str, Activity],
                                                 contact: Contact) -> None:
    assert search(carol, q="mulch") == ["Summit mulch"]
    assert client_for(carol).get("/activities/search/", {"contact": str(contact.pk)}).status_code == 404
    assert search(bob, q="Summit") == []


def page_text(user: User, **params: Any) -> str:
    response = client_for(user).get("/activities/search/", params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_choosers_find_and_pick_a_contact_and_a_record_without_script(
        bob: User, carol: User, mail: dict[str, Activity], contact: Contact, opportunity: Opportunity,
        summit: Any) -> None:
    # Another company's Dana is never offered.
    outsider = Contact.objects.create(company=summit, first_name="Dana", last_name="Outsider")
    found = page_text(bob, contact_q="dana", find="contact")
    assert f'name="contact_pick" value="{contact.pk}"' in found and str(outsider.pk) not in found
    assert "1 match: pick one, then Search." in found
    assert "Nothing matches “nobody”." in page_text(bob, contact_q="nobody", find="contact")

    # Picking one filters by it, shows it as a removable filter, and carries it on.
    picked = page_text(bob, contact_pick=str(contact.pk), contact_q="dana")
    assert subjects_of(picked) == ["Invoice 88231", "Spring mulch"]
    assert "Contact: " in picked and f'<input type="hidden" name="contact" value="{contact.pk}">' in picked
    assert 'name="contact_pick"' not in picked  # the typing is done with

    # A Regarding found by its name, then picked, on top of the contact.
    records = page_text(bob, contact=str(contact.pk), regarding_q="spring mulch", find="regarding")
    assert f'name="regarding_pick" value="opportunity:{opportunity.pk}"' in records
    assert subjects_of(page_text(bob, contact=str(contact.pk), regarding_pick=f"opportunity:{opportunity.pk}")) == [
        "Spring mulch"]

    # A pick replaces the contact chosen before; the filter's remove link leaves the other one.
    other = Contact.objects.create(company=bob.company, first_name="Jordan", last_name="Reyes")
    assert subjects_of(page_text(bob, contact=str(contact.pk), contact_pick=str(other.pk))) == []
    chosen = page_text(bob, contact=str(contact.pk), regarding=f"opportunity:{opportunity.pk}", contact_q="x")
    without = re.search(r'href="\?([^"]*)" aria-label="Any contact"', chosen)
    assert without is not None and without.group(1) == f"regarding=opportunity%3A{opportunity.pk}"

    # Checked on the server: another company's contact or record is a 404, picked or not.
    client = client_for(carol)
    assert client.get("/activities/search/", {"contact_pick": str(contact.pk)}).status_code == 404
    assert client.get("/activities/search/", {"regarding_pick": f"opportunity:{opportunity.pk}"}).status_code == 404
    assert client.get("/activities/search/", {"regarding_q": "spring mulch"}).content.decode().count(
        'name="regarding_pick"') == 0


def subjects_of(page: str) -> list[str]:
    return re.findall(r'<span class="mail-subject">([^<]*)</span>', page)


def test_pages_by_key_with_a_constant_number_of_queries(bob: User, contact: Contact) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(45):
        make_email(bob, subject=f"Estimate {n:02d}", text="estimate for the patio", contacts=[contact],
                   occurred_at=start + dt.timedelta(hours=n))
    client = client_for(bob)
    first = client.get("/activities/search/", {"q": "patio"})
    assert subjects(first)[:2] == ["Estimate 44", "Estimate 43"] and len(subjects(first)) == 20
    older = re.search(r'href="\?([^"]*before=[^"]*)">Older', first.content.decode())
    assert older is not None
    older_link = f"/activities/search/?{older.group(1).replace('&amp;', '&')}"
    second = client.get(older_link)
    assert subjects(second)[0] == "Estimate 24"  # the page after the key, not a page by offset

    def queries_of(url: str, params: dict[str, str] | None = None) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, params).status_code == 200
        return len(queries)

    first_page, key_page = queries_of("/activities/search/", {"q": "patio"}), queries_of(older_link)
    for n in range(45, 90):
        make_email(bob, subject=f"Estimate {n:02d}", text="estimate for the patio",
                   occurred_at=start + dt.timedelta(hours=n))
    # Twice the matches, the same number of queries.
    assert queries_of("/activities/search/", {"q": "patio"}) == first_page
    assert queries_of(older_link) == key_page
