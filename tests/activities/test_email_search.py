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
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, EmailMessage
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


# -- at a company's size: read a date range at a time, pages by key across them ---------------------

def every_page(user: User, **params: Any) -> tuple[list[str], list[str]]:
    """The subjects of every page, following Older to the end, and each page's heading."""
    client = client_for(user)
    response = client.get("/activities/search/", params)
    found, headings = [], []
    while True:
        assert response.status_code == 200
        found += subjects(response)
        headings += re.findall(r'<h2 id="results-title">([^<]*)</h2>', response.content.decode())
        older = re.search(r'href="\?([^"]*before=[^"]*)">Older', response.content.decode())
        if older is None:
            return found, headings
        response = client.get(f"/activities/search/?{html.unescape(older.group(1))}")


@pytest.fixture
def years_of_mail(bob: User, carol: User, contact: Contact) -> list[Activity]:
    """Mail from this week back to four years ago, thinning out with age, with ties on one time;
    Summit has the same words, to be left out."""
    now = timezone.now()
    ages = [dt.timedelta(hours=h) for h in range(0, 60, 6)] + [dt.timedelta(days=d) for d in (29, 31, 90, 200, 364)]
    ages += [dt.timedelta(days=366 + 90 * n) for n in range(12)]
    made = []
    for n, age in enumerate(ages):
        made.append(make_email(bob, subject=f"Hedge {n:02d}", text="trim the hedge" + (" twice" if n % 3 == 0 else ""),
                               contacts=[contact] if n % 2 else [], occurred_at=now - age,
                               origin=Activity.Origin.SENT_FROM_ASPIRE if n % 4 == 0 else Activity.Origin.CAPTURED))
    tie = now - dt.timedelta(days=400)
    made += [make_email(bob, subject=f"Hedge tie {n}", text="trim the hedge", occurred_at=tie) for n in range(3)]
    make_email(carol, subject="Summit hedge", text="trim the hedge", occurred_at=now)
    return made


def newest_first(activities: list[Activity], keep: Any = lambda activity: True) -> list[str]:
    return [a.subject for a in sorted(activities, key=lambda a: (a.occurred_at, a.pk), reverse=True) if keep(a)]


@pytest.mark.parametrize("per_page", [3, 7, 20])
def test_widening_finds_what_one_query_finds(bob: User, contact: Contact, years_of_mail: list[Activity],
                                             per_page: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from activities import views

    monkeypatch.setattr(views, "SEARCH_PAGE_SIZE", per_page)
    everything = newest_first(years_of_mail)
    assert every_page(bob, q="hedge")[0] == everything  # pages across the month, the year and the rest
    assert every_page(bob, q="twice")[0] == newest_first(years_of_mail, lambda a: "twice" in a.body)
    assert every_page(bob, q="hedge", origin="sent")[0] == newest_first(
        years_of_mail, lambda a: a.origin == Activity.Origin.SENT_FROM_ASPIRE)
    assert every_page(bob, contact=str(contact.pk))[0] == newest_first(
        years_of_mail, lambda a: a.contacts.filter(pk=contact.pk).exists())
    since = (timezone.now() - dt.timedelta(days=800)).date()
    until = (timezone.now() - dt.timedelta(days=20)).date()
    in_range = every_page(bob, q="hedge", since=since.isoformat(), until=until.isoformat())[0]
    assert in_range == [s for s in everything if s in set(newest_first(
        years_of_mail, lambda a: since <= timezone.localtime(a.occurred_at).date() <= until))]


def test_newer_pages_come_back_the_same_way(bob: User, years_of_mail: list[Activity],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from activities import views

    monkeypatch.setattr(views, "SEARCH_PAGE_SIZE", 4)
    client = client_for(bob)
    pages = [client.get("/activities/search/", {"q": "hedge"})]
    for _ in range(5):  # well past the first month and the first year
        older = re.search(r'href="\?([^"]*before=[^"]*)">Older', pages[-1].content.decode())
        assert older is not None
        pages.append(client.get(f"/activities/search/?{html.unescape(older.group(1))}"))
    newer = re.search(r'href="\?([^"]*after=[^"]*)">← Newer', pages[-1].content.decode())
    assert newer is not None
    back = client.get(f"/activities/search/?{html.unescape(newer.group(1))}")
    assert subjects(back) == subjects(pages[-2])


def test_a_common_word_says_more_than_the_bound(bob: User, years_of_mail: list[Activity],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from activities import selectors

    monkeypatch.setattr(selectors, "SEARCH_COUNT_LIMIT", 10)
    _found, headings = every_page(bob, q="hedge")
    assert set(headings) == {"More than 10 emails"}  # on every page, however deep
    twice = len(newest_first(years_of_mail, lambda a: "twice" in a.body))
    assert twice <= 10 and every_page(bob, q="twice")[1][0] == f"{twice} emails"


def test_the_same_queries_whether_the_page_fills_this_month_or_years_back(bob: User) -> None:
    now = timezone.now()
    for n in range(25):
        make_email(bob, subject=f"Recent {n}", text="recent aeration", occurred_at=now - dt.timedelta(hours=n))
        make_email(bob, subject=f"Old {n}", text="old aeration", occurred_at=now - dt.timedelta(days=700 + n))
    client = client_for(bob)

    def queries_of(q: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/activities/search/", {"q": q})
        assert len(subjects(response)) == 20
        return len(queries)

    assert queries_of("recent") == queries_of("old") == queries_of("aeration")


def test_an_email_found_at_its_activitys_time_when_that_moves(bob: User) -> None:
    now = timezone.now()
    first = make_email(bob, subject="Sod first", text="sod install", occurred_at=now - dt.timedelta(days=2))
    make_email(bob, subject="Sod second", text="sod install", occurred_at=now - dt.timedelta(days=1))
    assert search(bob, q="sod") == ["Sod second", "Sod first"]
    first.occurred_at = now
    first.save()
    assert search(bob, q="sod") == ["Sod first", "Sod second"]
    email = EmailMessage.objects.get(activity=first)
    email.problems = "a full save of the email keeps its time"
    email.save()
    assert search(bob, q="sod") == ["Sod first", "Sod second"]


def test_a_page_by_number_alone_is_the_page_its_key_leads_to(bob: User, years_of_mail: list[Activity],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from activities import views

    monkeypatch.setattr(views, "SEARCH_PAGE_SIZE", 4)
    by_key, _headings = every_page(bob, q="hedge")
    assert search(bob, q="hedge", page="3") == by_key[8:12]  # a page number typed into the address


def test_filters_alone_find_an_email_made_before_capture(bob: User, contact: Contact,
                                                        mail: dict[str, Activity]) -> None:
    # An email activity with no message row (made before mail capture existed): no words to
    # match, but a contact or a date range finds it, as its contact's timeline does.
    create_activity(company=bob.company, kind=Activity.Kind.EMAIL, subject="Old email", contacts=[contact],  # type: ignore[arg-type]
                    owner=bob, occurred_at=dt.datetime(2026, 3, 5, tzinfo=dt.UTC))
    assert search(bob, contact=str(contact.pk)) == ["Invoice 88231", "Old email", "Spring mulch"]
    assert search(bob, since="2026-03-04", until="2026-03-06") == ["Old email"]
    assert search(bob, q="old") == []


@pytest.mark.parametrize("per_page", [3, 20])
def test_has_an_attachment_finds_what_the_attachment_rows_say(bob: User, contact: Contact,
                                                               years_of_mail: list[Activity], per_page: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The filter reads the email's flag; it finds what the attachment rows say, across every range,
    as they are added, made inline or removed."""
    from activities import views
    from activities.models import EmailAttachment

    monkeypatch.setattr(views, "SEARCH_PAGE_SIZE", per_page)
    for n, activity in enumerate(years_of_mail):
        if n % 3 == 1:
            attach(activity, f"Plan {n}.pdf", b"%PDF-1.4")
            if n % 2:
                attach(activity, f"Photo {n}.jpg", b"\xff\xd8", content_type="image/jpeg")
        elif n % 5 == 0:
            attach(activity, "logo.png", b"\x89PNG", content_type="image/png", content_id="logo")  # inline only

    def with_files(activity: Activity) -> bool:
        return EmailAttachment.objects.filter(email_id=activity.pk, inline=False).exists()

    def flagged() -> set[str]:
        return set(EmailMessage.objects.filter(has_attachment=True).values_list("activity__subject", flat=True))

    assert flagged() == {a.subject for a in years_of_mail if with_files(a)}
    assert every_page(bob, q="hedge", attachment="on")[0] == newest_first(years_of_mail, with_files)
    assert every_page(bob, attachment="on")[0] == newest_first(years_of_mail, with_files)
    assert every_page(bob, contact=str(contact.pk), attachment="on")[0] == newest_first(
        years_of_mail, lambda a: with_files(a) and a.contacts.filter(pk=contact.pk).exists())

    # One of two files removed: still has one; the last removed, or the file made inline: none.
    two, one = years_of_mail[1], years_of_mail[4]
    EmailAttachment.objects.filter(email_id=two.pk, filename__startswith="Photo").delete()
    EmailAttachment.objects.filter(email_id=one.pk).update(inline=True, content_id="plan")
    EmailAttachment.objects.filter(email_id=years_of_mail[7].pk).delete()
    assert flagged() == {a.subject for a in years_of_mail if with_files(a)}
    assert two.subject in flagged() and one.subject not in flagged()
    assert every_page(bob, q="hedge", attachment="on")[0] == newest_first(years_of_mail, with_files)
