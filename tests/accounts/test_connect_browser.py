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


def test_time_zones_are_canonical_grouped_and_this_devices_comes_first(live_server: Any, browser_page: Any,
                                                                       bob: User) -> None:
    # A device in India: Chromium names its zone Asia/Calcutta, the legacy alias of Asia/Kolkata.
    context = browser_page.context.browser.new_context(timezone_id="Asia/Kolkata")
    page = context.new_page()
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Email address").first.fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="User settings").wait_for()

    zones = page.get_by_label("Time zone")
    groups = zones.locator("optgroup").evaluate_all("groups => groups.map(g => g.label)")
    assert groups[0] == "This device's time zone"
    assert groups[1:] == ["Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
                          "Indian", "Pacific"]
    first = zones.locator("option").first
    assert (first.get_attribute("value"), first.inner_text()) == ("Asia/Kolkata", "Asia / Kolkata")
    values = set(zones.locator("option").evaluate_all("options => options.map(o => o.value)"))
    assert {"America/Chicago", "Europe/London", "America/Argentina/Buenos_Aires", "UTC"} <= values
    assert not values & {"GB-Eire", "Etc/GMT+0", "US/Central", "Asia/Calcutta", "Factory", "localtime"}
    assert zones.input_value() == "America/Chicago"  # the suggestion does not change the saved zone

    zones.select_option(index=0)
    page.locator(".page-head").get_by_role("button", name="Save").click()
    page.get_by_text("Your settings are saved.").wait_for()
    bob.refresh_from_db()
    assert bob.time_zone == "Asia/Kolkata"
    context.close()
