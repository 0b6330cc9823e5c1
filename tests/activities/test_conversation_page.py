"""The conversation on the email page: its messages in order with their origin, quoted history
behind "Show quoted text", and Stop following (POST, CSRF, tenancy)."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, Conversation, EmailMessage
from crm.models import Contact, Opportunity
from tests.activities.emails import make_email
from tests.conftest import client_for

GMAIL_REPLY = (Path(__file__).parent / "replies" / "gmail.eml").read_text().split("\n\n", 1)[1]


def conversation_of_two(bob: User, contact: Contact) -> tuple[Activity, Activity, Conversation]:
    assert bob.company is not None
    started = timezone.now() - dt.timedelta(days=1)
    conversation = Conversation.objects.create(company=bob.company, started_at=started)
    first = make_email(bob, subject="Spring cleanup quote", text="Hi Dana,\n\nCan we come Tuesday?\n\nBob",
                       contacts=[contact], origin=Activity.Origin.SENT_FROM_ASPIRE, occurred_at=started,
                       from_name="Bob Staff", from_address="bob@greenleaf.example")
    reply = make_email(bob, subject="Re: Spring cleanup quote", text=GMAIL_REPLY, contacts=[contact],
                       origin=Activity.Origin.FOLLOWED, occurred_at=started + dt.timedelta(hours=2))
    EmailMessage.objects.filter(activity__in=[first, reply]).update(conversation=conversation)
    return first, reply, conversation


def test_the_email_page_shows_the_conversation_in_order_with_quoted_text_collapsed(bob: User,
                                                                                     contact: Contact) -> None:
    first, reply, _ = conversation_of_two(bob, contact)
    page = client_for(bob).get(f"/activities/{reply.pk}/").content.decode()
    assert "Captured automatically: follows a conversation in Aspire" in page
    assert "Conversation (2)" in page
    assert page.index("Sent from Aspire") < page.index("Followed") < page.index("Tuesday is perfect")
    assert "<details class=\"quoted\"><summary>Show quoted text</summary>" in page
    quoted = page[page.index("Show quoted text"):]
    assert "Attached is the quote" in quoted
    assert "Stop following" in page
    # The message dragged or sent first is not marked as captured automatically.
    assert "Captured automatically: follows" not in client_for(bob).get(f"/activities/{first.pk}/").content.decode()


def test_stop_following(bob: User, contact: Contact) -> None:
    _, reply, conversation = conversation_of_two(bob, contact)
    client = client_for(bob)
    assert client.get(f"/activities/{reply.pk}/stop-following/").status_code == 405
    response = client.post(f"/activities/{reply.pk}/stop-following/", follow=True)
    conversation.refresh_from_db()
    assert (conversation.following, conversation.stopped_by) == (False, bob)
    page = html.unescape(response.content.decode())
    assert "won't be captured automatically" in page
    assert "Bob Staff stopped following it" in page and "Stop following</button>" not in page


def test_stop_following_needs_the_csrf_token_and_the_company(bob: User, carol: User, contact: Contact) -> None:
    _, reply, conversation = conversation_of_two(bob, contact)
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(bob)
    assert checked.post(f"/activities/{reply.pk}/stop-following/").status_code == 403
    assert client_for(carol).post(f"/activities/{reply.pk}/stop-following/").status_code == 404
    conversation.refresh_from_db()
    assert conversation.following


def test_a_timeline_shows_the_conversation_as_one_entry_with_a_count(bob: User, contact: Contact) -> None:
    conversation_of_two(bob, contact)
    make_email(bob, subject="Invoice 88231", text="Attached.", contacts=[contact])
    page = client_for(bob).get(contact.get_absolute_url()).content.decode()
    assert "Conversation: 2 emails" in page
    group = page[page.index("<details class=\"conversation-group\">"):]
    group = group[:group.index("</details>")]
    assert "Spring cleanup quote" in group and "Re: Spring cleanup quote" not in group
    assert "Invoice 88231" not in group


def timeline_titles(page: str) -> list[str]:
    """The entries' titles, then (apart) those inside conversation groups."""
    page = html.unescape(page)
    groups = re.findall(r'<details class="conversation-group">(.*?)</details>', page, flags=re.S)
    outside = re.sub(r'<details class="conversation-group">.*?</details>', "", page, flags=re.S)
    title = r'<h3>(?:<a [^>]*>)?([^<]*)(?:</a>)?</h3>'
    return re.findall(title, outside) + ["|"] + [t for group in groups for t in re.findall(title, group)]


def test_a_conversation_over_two_pages_is_one_entry_on_the_page_of_its_newest_email(
        bob: User, contact: Contact, opportunity: Opportunity) -> None:
    assert bob.company is not None
    start = timezone.now() - dt.timedelta(days=30)
    conversation = Conversation.objects.create(company=bob.company, started_at=start)
    quote = make_email(bob, subject="Spring cleanup quote", contacts=[contact], occurred_at=start)
    for n in range(25):  # the quote is on the second page by itself
        make_email(bob, subject=f"Email {n:02d}", contacts=[contact], occurred_at=start + dt.timedelta(hours=1 + n))
    reply = make_email(bob, subject="Re: Spring cleanup quote", contacts=[contact], origin=Activity.Origin.FOLLOWED,
                       occurred_at=start + dt.timedelta(days=5))
    EmailMessage.objects.filter(activity__in=[quote, reply]).update(conversation=conversation)
    for each in (quote, reply):
        each.regarding = opportunity
        each.save(update_fields=["regarding_opportunity"])
    client = client_for(bob)

    first = client.get(contact.get_absolute_url()).content.decode()
    assert timeline_titles(first) == ["Re: Spring cleanup quote", *[f"Email {n:02d}" for n in range(24, 5, -1)],
                                      "|", "Spring cleanup quote"]
    assert "Conversation: 2 emails" in first
    # 26 entries: the second page has the other 6 emails, and the quote only once, beneath its reply.
    older = re.search(r'href="\?([^"]*)">Older', first)
    assert older is not None
    second = client.get(f"{contact.get_absolute_url()}?{html.unescape(older.group(1))}").content.decode()
    assert timeline_titles(second) == [*[f"Email {n:02d}" for n in range(5, -1, -1)], "|"]
    by_number = client.get(contact.get_absolute_url(), {"page": "2"}).content.decode()
    assert timeline_titles(by_number) == timeline_titles(second) and "Page 2" in by_number
    newer = re.search(r'href="\?([^"]*)">(?:←\s*)?Newer', second)
    assert newer is not None
    back = client.get(f"{contact.get_absolute_url()}?{html.unescape(newer.group(1))}").content.decode()
    assert timeline_titles(back) == timeline_titles(first)

    # A record's timeline alike: the reply's entry holds the quote.
    record = client.get(opportunity.get_absolute_url()).content.decode()
    assert timeline_titles(record) == ["Re: Spring cleanup quote", "|", "Spring cleanup quote"]

    # A filter that leaves out the reply makes the quote its conversation's newest there.
    captured = client.get(contact.get_absolute_url(), {"origin": "captured", "page": "2"}).content.decode()
    assert timeline_titles(captured) == [*[f"Email {n:02d}" for n in range(4, -1, -1)], "Spring cleanup quote", "|"]


def test_a_conversation_over_pages_costs_no_more_queries(bob: User, contact: Contact) -> None:
    assert bob.company is not None
    start = timezone.now() - dt.timedelta(days=30)
    for n in range(45):
        make_email(bob, subject=f"Email {n:02d}", contacts=[contact], occurred_at=start + dt.timedelta(hours=n))
    client = client_for(bob)
    client.get(contact.get_absolute_url())

    def queries(params: dict[str, str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(contact.get_absolute_url(), params).status_code == 200
        return len(captured)

    alone = queries({}), queries({"page": "2"})
    for n in range(5):  # five conversations, each from page 3 up to page 1
        conversation = Conversation.objects.create(company=bob.company, started_at=start)
        first = make_email(bob, subject=f"Quote {n}", contacts=[contact], occurred_at=start - dt.timedelta(hours=n))
        last = make_email(bob, subject=f"Re: Quote {n}", contacts=[contact], occurred_at=start + dt.timedelta(days=9))
        EmailMessage.objects.filter(activity__in=[first, last]).update(conversation=conversation)
    assert (queries({}), queries({"page": "2"})) == alone
