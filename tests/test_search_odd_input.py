"""Odd searches typed into every search box (the record lists, the choosers, the email page's
choosers, the admin): a NUL character, which PostgreSQL refuses in a query, and digits that are not
decimal (``²``), which ``int`` cannot read. Each is answered with a page, never a server error."""

from __future__ import annotations

import html

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from activities.models import Activity
from crm.models import Contact, WorkTicket
from tests.activities.emails import make_email
from tests.conftest import client_for

ODD = ["\x00", "Whit\x00field", "²", "#²", "1041²", "\x00\x00#1041"]


def searched_pages(activity: Activity) -> list[tuple[str, str]]:
    return [
        ("/contacts/", "q"),
        ("/properties/", "q"),
        ("/opportunities/", "q"),
        ("/work-tickets/", "q"),
        ("/activities/regarding-search/", "q"),
        ("/activities/contact-search/", "q"),
        (f"/activities/{activity.pk}/", "regarding_q"),
        (f"/activities/{activity.pk}/", "contact_q"),
        ("/calendar/appointments/new/", "contact_q"),
        ("/calendar/appointments/new/", "regarding_q"),
        ("/admin/crm/contact/", "q"),
        ("/admin/crm/workticket/", "q"),
        ("/admin/crm/property/", "q"),
        ("/admin/crm/opportunity/", "q"),
    ]


@pytest.mark.parametrize("q", ODD)
def test_an_odd_search_is_answered_with_a_page(
    alice: User, activity: Activity, work_ticket: WorkTicket, q: str
) -> None:
    client = client_for(alice)  # a company admin: the admin's lists too
    for url, name in searched_pages(activity):
        response = client.get(url, {name: q})
        assert response.status_code == 200, (url, name, q)


def test_a_nul_character_is_ignored_in_what_is_searched(bob: User, contact: Contact, work_ticket: WorkTicket) -> None:
    client = client_for(bob)
    found = client.get("/activities/contact-search/", {"q": "Whit\x00field"}).json()
    assert [choice["value"] for choice in found["results"]] == [str(contact.pk)]
    assert "Dana Whitfield" in html.unescape(client.get("/contacts/", {"q": "Whit\x00field"}).content.decode())
    assert client.get("/activities/contact-search/", {"q": "\x00"}).json()["results"] == []
    tickets = client.get("/activities/regarding-search/", {"q": "\x00#1041"}).json()["results"]
    assert any("1041" in choice["label"] for choice in tickets)


def test_find_email_refuses_a_far_date_with_a_message_and_keeps_the_words(bob: User) -> None:
    make_email(bob, subject="Mulch delivery", text="Dark brown mulch, please.")
    client = client_for(bob)
    for params in ({"q": "mulch", "until": "9999-12-31"}, {"q": "mulch", "since": "0001-01-01", "until": "9999-12-31"}):
        response = client.get("/activities/search/", params)
        page = html.unescape(response.content.decode())
        assert response.status_code == 200
        assert "Choose a date between 1900 and 2999." in page and 'value="mulch"' in page
    assert "Mulch delivery" in html.unescape(
        client.get("/activities/search/", {"q": "mulch", "until": "2999-12-31"}).content.decode()
    )


@pytest.mark.parametrize(
    "url", ["/contacts/", "/work-tickets/", "/activities/contact-search/", "/activities/regarding-search/"]
)
def test_a_pasted_page_of_words_makes_no_bigger_query_than_a_few_words(bob: User, contact: Contact, url: str) -> None:
    """Each word searched is a subquery: a search reads its first words only (accounts.search), so
    2,000 pasted words cost what eight do, and a name still matches."""
    client = client_for(bob)

    def sql_size(q: str) -> int:
        with CaptureQueriesContext(db_connection) as queries:
            assert client.get(url, {"q": q}).status_code == 200
        return sum(len(query["sql"]) for query in queries.captured_queries)

    eight = sql_size(" ".join(f"w{n}" for n in range(8)))
    assert sql_size(" ".join(f"w{n}" for n in range(2000))) < eight * 2  # before: a subquery per word, 2,000 of them
    assert sql_size("x" * 60_000) < 20_000
    found = client.get("/activities/contact-search/", {"q": "Dana Whitfield " + "Dana " * 2000}).json()["results"]
    assert [choice["value"] for choice in found] == [str(contact.pk)]
