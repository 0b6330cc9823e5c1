"""A person signs in, finds a customer, and reads their history, in a real Chromium on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from activities.models import Activity
from crm.models import Contact, ContactEmail
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_search_and_read_a_contacts_timeline(
    live_server: Any, browser_page: Any, bob: User, activity: Activity, carol: User
) -> None:
    church = Contact.objects.create(company=bob.company, first_name="Henry", last_name="Olsen")
    ContactEmail.objects.create(company=bob.company, contact=church,
                                address="facilities.department@lakesidechurchgrounds.example")
    page = browser_page
    page.goto(live_server.url + "/contacts/")
    page.get_by_label("Email address").fill("bob@greenleaf.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Contacts").wait_for()

    page.wait_for_load_state("load")  # the stylesheet is applied
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.get_by_label("Search contacts").fill("whitfield")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Dana Whitfield").click()

    page.get_by_role("heading", name="Dana Whitfield").wait_for()
    page.wait_for_load_state("load")
    item = page.locator("article.activity").first
    assert "Mulch color" in item.inner_text()
    assert "Captured from mailbox" in item.inner_text()
    item.get_by_role("link", name="Spring mulch").click()
    page.get_by_role("heading", name="Spring mulch").wait_for()
    assert "Mulch color" in page.locator(".timeline").inner_text()

    # Nothing overflows sideways on a phone, on the list above or here.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Aspire").wait_for()


def test_page_through_a_long_timeline_and_back(
    live_server: Any, browser_page: Any, bob: User, contact: Contact
) -> None:
    import datetime as dt

    from activities.services import create_activity

    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    for n in range(45):
        create_activity(company=bob.company, kind="note", subject=f"Visit note {n:02d}", owner=bob,
                        contacts=[contact], occurred_at=start + dt.timedelta(days=n))
    page = browser_page
    page.goto(live_server.url + contact.get_absolute_url())
    page.get_by_label("Email address").fill("bob@greenleaf.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Page 1 of 3").wait_for()
    assert page.locator("article.activity").first.inner_text().count("Visit note 44") == 1
    page.get_by_role("link", name="Older →").click()
    page.get_by_text("Page 2 of 3").wait_for()
    page.get_by_role("link", name="Older →").click()
    page.get_by_text("Page 3 of 3").wait_for()
    assert "Visit note 00" in page.locator(".timeline").inner_text()
    assert page.get_by_role("link", name="Older →").count() == 0
    page.get_by_role("link", name="← Newer").click()
    page.get_by_text("Page 2 of 3").wait_for()
    notes = page.locator("article.activity h3").all_inner_texts()
    assert notes[0] == "Visit note 24" and notes[-1] == "Visit note 05"
