"""A person writes to a contact in a real Chromium and sees the message go out in the Outbox.

The send task runs in the test's own process (the way a worker runs it) once the browser has
queued the message, so the test controls when sending happens; tests/mailsync/test_sending_worker.py
covers real workers."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import MailboxConnection, User
from crm.models import Contact, Opportunity
from mailsync.models import OutboundEmail
from mailsync.send_tasks import send_queue
from sandbox.runner import SandboxProcess
from tests.conftest import PASSWORD, client_for
from tests.mailsync.test_sending import connect_bob, sent_copies

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_write_to_a_contact_and_see_it_sent(provider: str, live_server: Any, browser_page: Any,
                                            providers_on_sandbox: SandboxProcess, bob: User, contact: Contact,
                                            opportunity: Opportunity, tmp_path: Any) -> None:
    connect_bob(client_for(bob), providers_on_sandbox, bob, provider)
    page = browser_page
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    page.get_by_label("Email address").first.fill("bob@greenleaf.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Write email").click()

    page.get_by_role("heading", name="New email").wait_for()
    assert page.get_by_label("To").input_value() == "dana@example.com"
    page.get_by_label("Subject").fill("Spring mulch proposal")
    page.get_by_label("Message").fill("Hi Dana,\n\nThe proposal is attached.\n\nBob")
    page.get_by_label("Regarding").select_option(label="Opportunity: Spring mulch")
    proposal = tmp_path / "Proposal.pdf"
    proposal.write_bytes(b"%PDF-1.4 proposal")
    page.get_by_label("Attachments").set_input_files(str(proposal))
    page.get_by_role("button", name="Send").click()

    page.get_by_role("heading", name="Spring mulch proposal").wait_for()
    assert "Queued" in page.locator(".outbound-state").inner_text()

    send_queue(str(MailboxConnection.objects.get(user=bob).pk))

    page.get_by_role("banner").get_by_role("link", name="Outbox").click()
    page.get_by_role("heading", name="Outbox").wait_for()
    item = page.locator("article.outbound", has_text="Spring mulch proposal")
    assert item.locator(".outbound-state").get_attribute("data-state") == "sent"
    assert "Sent" in item.inner_text()
    outbound = OutboundEmail.objects.get()
    assert len(sent_copies(providers_on_sandbox, provider, outbound.message_id)) == 1
    assert outbound.activity is not None and outbound.activity.regarding == opportunity
