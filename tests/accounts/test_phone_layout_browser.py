"""On a phone (the browser fixture's 390 x 844), the pages that list facts as "label: value"
(Sync health, Settings' status panel) fit the screen: a long label such as "Push: Sent Items
(following conversations)" wraps instead of pushing the values off the right edge."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from providers.errors import AuthRevoked
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFF_SCREEN = """() => [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map(e => e.tagName + ': ' + e.innerText.slice(0, 40))"""


def test_sync_health_and_settings_fit_a_phone(live_server: Any, browser_page: Any, alice: User, bob: User) -> None:
    MailboxConnection.objects.create(
        user=bob,
        company=bob.company,
        provider="microsoft",
        mailbox_address=bob.email,
        state=MailboxConnection.State.NEEDS_SIGNIN,
        sync_email=True,
        sync_aspire_folder=True,
        sync_calendar=True,
        last_error=AuthRevoked.default_message,
        last_error_at=timezone.now(),
    )
    page = browser_page
    for user, path in ((alice, "/sync-health/"), (bob, "/settings/")):
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Email address").first.fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/contacts/")
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("window.innerWidth") == 390
        assert page.evaluate(OFF_SCREEN) == [], path
