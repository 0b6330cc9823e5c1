"""Bob narrows Find email to a contact and a Regarding he finds by typing, in a real Chromium on a
phone-sized screen, then drops the contact again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from accounts.models import Company, User
from crm.models import Contact, Opportunity
from tests.activities.emails import make_email
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_choose_a_contact_and_a_regarding_as_you_type(live_server: Any, browser_page: Any, bob: User,
                                                      contact: Contact, opportunity: Opportunity,
                                                      summit: Company) -> None:
    day = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    mulch = make_email(bob, subject="Mulch for the beds", text="Dark brown mulch", contacts=[contact],
                       occurred_at=day)
    mulch.regarding = opportunity
    mulch.save(update_fields=["regarding_opportunity"])
    make_email(bob, subject="Invoice 88231", text="Attached", contacts=[contact],
               occurred_at=day + dt.timedelta(days=1))
    make_email(bob, subject="Gutter cleaning", text="Downspouts", occurred_at=day + dt.timedelta(days=2))
    Contact.objects.create(company=summit, first_name="Dana", last_name="Elsewhere")

    page = browser_page
    page.goto(live_server.url + "/activities/search/")
    page.get_by_label("Email address").fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Find email").wait_for()

    # Matches appear as he types; another company's Dana never does.
    page.get_by_label("Find a contact").fill("dana")
    page.get_by_role("radio", name="Dana Whitfield").check()
    assert page.get_by_role("radio", name="Dana Elsewhere").count() == 0
    page.get_by_label("Find an opportunity, property or work ticket").fill("spring")
    page.get_by_role("radio", name="Spring mulch").check()
    page.get_by_role("button", name="Search", exact=True).click()

    page.get_by_role("heading", name="1 email").wait_for()
    assert page.locator(".mail-subject").all_inner_texts() == ["Mulch for the beds"]
    assert "Contact: Dana Whitfield" in page.locator("#contact-filter").inner_text()
    assert "Regarding: Spring mulch" in page.locator("#regarding-filter").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # Dropping the Regarding keeps the contact.
    page.get_by_role("link", name="Regarding anything").click()
    page.get_by_role("heading", name="2 emails").wait_for()
    assert page.locator(".mail-subject").all_inner_texts() == ["Invoice 88231", "Mulch for the beds"]
    assert "Contact: Dana Whitfield" in page.locator("#contact-filter").inner_text()
