"""In a real Chromium: a company admin opens Sync health from the navigation and asks a colleague
whose mailbox needs sign-in to reconnect; the colleague sees the banner and follows it to Settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from accounts import grants
from accounts.models import MailboxConnection, User
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess
from tests.conftest import PASSWORD
from tests.mailboxes import connected_mailbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Any, base_url: str, user: User) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email address").first.fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/contacts/")


def test_an_admin_asks_a_colleague_to_reconnect_and_the_colleague_follows_the_banner(
        live_server: Any, browser_page: Any, providers_on_sandbox: SandboxProcess, settings: Any,
        monkeypatch: pytest.MonkeyPatch, alice: User, bob: User) -> None:
    settings.SITE_URL = live_server.url
    connection = connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})
    monkeypatch.setattr(grants, "REFRESH_LEEWAY_SECONDS", 4 * 3600)
    with pytest.raises(AuthRevoked):
        run_capture(connection_id=connection.pk, owner="test")
    assert MailboxConnection.objects.get(pk=connection.pk).state == "needs_signin"
    assert [m.subject for m in mail.outbox] == ["Aspire: sign in again to keep your mail and calendar syncing"]

    # Alice, the company admin, finds Sync health in the navigation.
    page = browser_page
    sign_in(page, live_server.url, alice)
    page.get_by_role("link", name="Sync health").click()
    page.get_by_role("heading", name="Sync health").wait_for()
    row = page.locator(".health-row", has=page.get_by_role("heading", name="Bob Staff"))
    row_text = " ".join(row.inner_text().split())
    assert "Needs sign-in bob@greenleaf.example · Google" in row_text
    assert "Please sign in again to keep syncing." in row_text
    row.get_by_role("button", name="Ask Bob Staff to reconnect").click()
    page.wait_for_url(f"{live_server.url}/sync-health/")
    assert page.get_by_role("status").first.inner_text() == (
        "Asked Bob Staff to reconnect: an email with a link to their Settings is on its way to "
        "bob@greenleaf.example.")
    assert row.get_by_role("button", name="Ask Bob Staff to reconnect").count() == 0
    assert "you can ask again after" in row.inner_text()
    assert len(mail.outbox) == 2
    asked = mail.outbox[1]
    assert asked.to == ["bob@greenleaf.example"]
    link = next(line.strip() for line in asked.body.splitlines() if line.strip().startswith("http"))
    assert link == f"{live_server.url}/settings/"

    # Bob sees the banner on every page, and it takes him to Settings, where Reconnect waits.
    context = browser_page.context.browser.new_context(viewport={"width": 390, "height": 844})
    bob_page = context.new_page()
    bob_page.set_default_timeout(15_000)
    sign_in(bob_page, live_server.url, bob)
    banner = bob_page.get_by_role("alert")
    assert "Aspire can no longer sync your mailbox" in banner.inner_text()
    banner.get_by_role("link", name="Reconnect in Settings").click()
    bob_page.wait_for_url(link)
    bob_page.get_by_role("heading", name="User settings").wait_for()
    assert bob_page.get_by_role("button", name="Reconnect").is_visible()
    context.close()
