"""A person connects their mailbox in a real Chromium: Settings → the provider's sign-in →
the one-time code → back in Aspire, connected."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import MailboxConnection, User
from sandbox.runner import SandboxProcess
from tests.conftest import PASSWORD, mailbox_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_connect_a_mailbox_with_mfa_in_a_browser(provider: str, live_server: Any, browser_page: Any,
                                                 providers_on_sandbox: SandboxProcess, settings: Any,
                                                 bob: User) -> None:
    settings.OAUTH_REDIRECT_URI = f"{live_server.url}/settings/mailbox/callback/"
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example", display_name="Bob Staff",
                    mfa=True, mfa_code="654321")
    page = browser_page
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Email address").first.fill("bob@greenleaf.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="User settings").wait_for()

    page.get_by_label("Sync Email").check()
    page.get_by_label("Sync Calendar").check()
    page.get_by_label("Private").check()
    assert page.locator("#shared-with").is_visible()  # shown for a private calendar only
    page.get_by_label("Public").check()
    assert not page.locator("#shared-with").is_visible()
    page.get_by_label("Provider").select_option(provider)
    page.locator("#id_sync-mailbox_address").fill("bob@greenleaf.example")
    page.locator(".page-head").get_by_role("button", name="Save").click()

    # The provider's own sign-in page (the sandbox's), then its one-time-code page.
    page.wait_for_url(f"{providers_on_sandbox.base_url}/**")
    page.get_by_label("Email").fill("bob@greenleaf.example")
    page.get_by_label("Password").fill("password")
    page.locator("button[type=submit]").first.click()
    page.get_by_label("code", exact=False).fill("654321")
    page.locator("button[type=submit]").first.click()

    page.wait_for_url(f"{live_server.url}/settings/")
    assert page.get_by_role("status").first.inner_text() == "Connected as Bob Staff <bob@greenleaf.example>."
    status = " ".join(page.locator(".status").inner_text().split())
    label = {"microsoft": "Microsoft 365", "google": "Google"}[provider]
    assert f"Connected Bob Staff <bob@greenleaf.example> · {label}" in status
    assert "Connected Connected" not in status
    assert page.get_by_role("button", name="Sync now").is_visible()
    assert MailboxConnection.objects.get(user=bob).state == "connected"
