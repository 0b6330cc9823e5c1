"""Bob narrows a contact's timeline to a range of days, in a real Chromium on a phone-sized screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from accounts.models import User
from crm.models import Contact
from tests.activities.emails import make_email
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_range_of_days_on_a_contacts_timeline(live_server: Any, browser_page: Any, bob: User,
                                                contact: Contact) -> None:
    start = dt.datetime(2026, 2, 1, 18, tzinfo=dt.UTC)
    for n in range(30):
        make_email(bob, subject=f"Email {n:02d}", contacts=[contact], occurred_at=start + dt.timedelta(days=n))
    page = browser_page
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    page.get_by_label("Email address").fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dana Whitfield").wait_for()

    filters = page.get_by_role("form", name="Filter activities")
    filters.get_by_label("From").fill("2026-02-03")
    filters.get_by_label("To").fill("2026-02-26")
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_url("**since=2026-02-03**")
    titles = page.locator(".timeline h3")
    assert titles.first.inner_text() == "Email 25" and titles.count() == 20
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url("**before=**")
    assert page.locator(".timeline h3").all_inner_texts() == [f"Email {n:02d}" for n in range(5, 1, -1)]
    assert page.get_by_label("From").input_value() == "2026-02-03"
