"""The conversation on the email page: its messages in order with their origin, quoted history
behind "Show quoted text", and Stop following (POST, CSRF, tenancy)."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from django.test import Client
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, Conversation, EmailMessage
from crm.models import Contact
from tests.activities.emails import make_email
from tests.conftest import client_for

GMAIL_REPLY = (Path(__file__).parent / "replies" / "gmail.eml").read_text().split("\n\n", 1)[1]


def conversation_of_two(bob: User, contact: Contact, *, bob_follows: bool = True) -> tuple[Activity, Activity,
                                                                                         Conversation]:
    """Bob's email and Dana's reply that followed it, with Bob following conversations (or not)."""
    assert bob.company is not None
    bob.follow_conversations = bob_follows
    bob.save(update_fields=["follow_conversations"])
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


def test_stop_following_is_only_for_someone_who_follows_conversations(bob: User, alice: User,
                                                                      contact: Contact) -> None:
    _, reply, conversation = conversation_of_two(bob, contact, bob_follows=False)
    assert alice.company is not None and not alice.follows_conversations
    for user in (bob, alice):  # Bob turned following off; Alice never had it (the company's default is off)
        client = client_for(user)
        page = html.unescape(client.get(f"/activities/{reply.pk}/").content.decode())
        assert "Conversation (2)" in page
        assert "Stop following" not in page and "Not followed" not in page
        client.post(f"/activities/{reply.pk}/stop-following/")
        conversation.refresh_from_db()
        assert conversation.following
    # With the company's default on, Alice follows (she never chose otherwise) and may stop it.
    alice.company.follow_conversations_default = True
    alice.company.save(update_fields=["follow_conversations_default"])
    client = client_for(alice)
    assert "Stop following</button>" in client.get(f"/activities/{reply.pk}/").content.decode()
    client.post(f"/activities/{reply.pk}/stop-following/")
    conversation.refresh_from_db()
    assert (conversation.following, conversation.stopped_by) == (False, alice)
    # Once stopped, everyone sees that it is not followed, and by whom.
    page = html.unescape(client_for(bob).get(f"/activities/{reply.pk}/").content.decode())
    assert "Not followed: Alice Admin stopped following it" in page


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
    assert "Conversation: 2 emails on this page" in page
    group = page[page.index("<details class=\"conversation-group\">"):]
    group = group[:group.index("</details>")]
    assert "Spring cleanup quote" in group and "Re: Spring cleanup quote" not in group
    assert "Invoice 88231" not in group
