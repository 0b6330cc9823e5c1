"""Following conversations as people set it: each user in User Settings, the company's default
and the never-capture list by company admins in the admin (their own company's only)."""

from __future__ import annotations

import html

from accounts.models import Company, User
from mailsync.models import NeverCapture
from tests.conftest import client_for
from tests.mailboxes import settings_form


def test_a_user_chooses_and_the_company_default_applies_otherwise(bob: User) -> None:
    client = client_for(bob)
    page = html.unescape(client.get("/settings/").content.decode())
    assert "Also capture replies to conversations already in Aspire" in page
    assert "Company default (Off)" in page
    assert not bob.follows_conversations

    client.post("/settings/", settings_form(bob, follow_conversations="on"))
    bob.refresh_from_db()
    assert bob.follow_conversations is True and bob.follows_conversations

    client.post("/settings/", settings_form(bob, follow_conversations="off"))
    bob.refresh_from_db()
    assert bob.follow_conversations is False
    assert bob.company is not None
    bob.company.follow_conversations_default = True
    bob.company.save()
    assert not bob.follows_conversations  # the user's own choice wins

    client.post("/settings/", settings_form(bob))  # back to the company's default
    bob.refresh_from_db()
    assert bob.follow_conversations is None and bob.follows_conversations
    assert "Company default (On)" in client.get("/settings/").content.decode()


def test_an_unknown_choice_is_refused_and_saves_nothing(bob: User) -> None:
    response = client_for(bob).post("/settings/", settings_form(bob, follow_conversations="always"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    bob.refresh_from_db()
    assert bob.follow_conversations is None


def test_company_admins_keep_the_default_and_the_never_capture_list(alice: User, carol: User,
                                                                    greenleaf: Company, summit: Company) -> None:
    admin = client_for(alice)
    change = admin.get(f"/admin/accounts/company/{greenleaf.pk}/change/").content.decode()
    assert "follow_conversations_default" in change

    response = admin.post("/admin/mailsync/nevercapture/add/", {"entry": "  @Clinic.Example ", "note": "Doctor"})
    assert response.status_code == 302
    entry = NeverCapture.objects.get()
    assert (entry.entry, entry.company_id) == ("clinic.example", greenleaf.pk)
    refused = admin.post("/admin/mailsync/nevercapture/add/", {"entry": "not an address"})
    assert "Enter an address (jane@clinic.example) or a domain" in html.unescape(refused.content.decode())
    assert NeverCapture.objects.count() == 1

    outsider = client_for(carol)
    assert "clinic.example" not in outsider.get("/admin/mailsync/nevercapture/").content.decode()
    assert outsider.get(f"/admin/mailsync/nevercapture/{entry.pk}/change/").status_code in (302, 404)
