"""In a real Chromium: Reply from Aspire lands in the customer's own thread at the provider; a
stranger's mail becomes a contact from Unmatched mail; Find email finds a word in a body."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import MailboxConnection, User
from activities.models import Activity
from crm.models import Contact
from mailsync.capture import run_capture
from mailsync.models import OutboundEmail
from mailsync.send_tasks import send_queue
from sandbox.runner import SandboxProcess
from tests.activities.emails import make_email
from tests.conftest import PASSWORD, mailbox_account
from tests.mailboxes import connected_mailbox, drop, mime

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SENT = {"microsoft": "Sent Items", "google": "SENT"}
INBOX = {"microsoft": "Inbox", "google": "INBOX"}


def sign_in(page: Any, url: str, user: User) -> None:
    page.goto(url)
    page.get_by_label("Email address").first.fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def folder(sandbox: SandboxProcess, provider: str, address: str, name: str) -> list[dict[str, Any]]:
    box = sandbox.control("GET", f"/accounts/{provider}/{address}/mailbox")
    [found] = [f for f in box["folders"] if name in (f["name"], f["id"])]
    return list(found["messages"])


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_reply_from_aspire_lands_in_the_customers_thread(
    provider: str, live_server: Any, browser_page: Any, providers_on_sandbox: SandboxProcess, bob: User,
    contact: Contact,
) -> None:
    sandbox = providers_on_sandbox
    connection = connected_mailbox(sandbox, bob, provider, "bob@greenleaf.example", display_name="Bob Staff")
    run_capture(connection_id=connection.pk, owner="setup")
    # Dana (a mailbox of the same provider) wrote to Bob; Bob dragged her email into Aspire.
    mailbox_account(sandbox, provider, "dana@example.com", display_name="Dana Whitfield")
    original = mime("Gate code for Thursday", body="The gate code is 4410. Dana", message_id="<gate-1@example.com>")
    drop(sandbox, provider, "dana@example.com", original, folder=SENT[provider])
    drop(sandbox, provider, "bob@greenleaf.example", original)
    run_capture(connection_id=connection.pk, owner="test")
    [dana_sent] = folder(sandbox, provider, "dana@example.com", SENT[provider])

    page = browser_page
    sign_in(page, f"{live_server.url}/contacts/{contact.pk}/", bob)
    page.get_by_role("link", name="Gate code for Thursday").click()
    page.get_by_role("link", name="Reply", exact=True).click()
    page.get_by_role("heading", name="Reply").wait_for()
    assert page.get_by_label("To").input_value() == "dana@example.com"
    assert page.get_by_label("Subject").input_value() == "Re: Gate code for Thursday"
    assert "The gate code is 4410." in page.locator(".quoted-original").inner_text()
    page.get_by_label("Message").fill("Thanks Dana, the crew has it.")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Re: Gate code for Thursday").wait_for()

    assert str(send_queue(str(MailboxConnection.objects.get(user=bob).pk))) == "sent 1"
    outbound = OutboundEmail.objects.get()
    # At Dana's provider: the reply is in her Inbox, once, in the thread of the email she sent.
    [received] = [m for m in folder(sandbox, provider, "dana@example.com", INBOX[provider])
                  if m["internet_message_id"] == outbound.message_id]
    assert received["thread_id"] == dana_sent["thread_id"]
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    assert page.get_by_role("link", name="Re: Gate code for Thursday").count() == 1


def test_create_contact_from_unmatched_mail(live_server: Any, browser_page: Any, bob: User) -> None:
    for n in range(2):
        make_email(bob, subject=f"Gutter question {n}", text="Can you clean our gutters?",
                   from_name="Jordan Reyes", from_address="jordan@northfield.example")
    page = browser_page
    sign_in(page, f"{live_server.url}/activities/unmatched/", bob)
    page.get_by_role("link", name="Gutter question 1").click()
    form = page.locator("#create-contact")
    assert form.get_by_label("First name").input_value() == "Jordan"
    assert form.get_by_label("Email address").input_value() == "jordan@northfield.example"
    form.get_by_label("Customer company").fill("Northfield HOA")
    form.get_by_role("button", name="Create contact").click()
    page.get_by_text("Jordan Reyes is a contact now.").wait_for()
    assert "and 1 other from the same address" in page.locator(".flash").first.inner_text()
    jordan = Contact.objects.get(first_name="Jordan", company_name="Northfield HOA")
    assert set(Activity.objects.filter(contacts=jordan).values_list("subject", flat=True)) == {
        "Gutter question 0", "Gutter question 1"}
    page.goto(f"{live_server.url}/activities/unmatched/")
    page.get_by_text("Nothing waiting.").wait_for()


def test_find_an_email_by_a_word_in_its_body(live_server: Any, browser_page: Any, bob: User,
                                            contact: Contact) -> None:
    make_email(bob, subject="Backyard", text="The downspouts overflow whenever it rains.", contacts=[contact])
    make_email(bob, subject="Invoice", text="Attached is the invoice.", contacts=[contact])
    page = browser_page
    sign_in(page, f"{live_server.url}/activities/search/", bob)
    page.get_by_label("Words").fill("downspouts")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("heading", name="1 email").wait_for()
    page.get_by_role("link", name="Backyard").click()
    page.get_by_role("heading", name="Backyard").wait_for()
    assert "downspouts overflow" in page.locator(".email-body").inner_text()
