"""Following a conversation, as Bob lives it in a real Chromium: he drags one email into Aspire;
the customer's reply lands in his Inbox and is on the contact's timeline without being dragged
(the sandbox pushes, a real worker syncs); his own reply written in the mail client's Sent folder
follows too; mail with someone of a blocked domain does not; after Stop following, nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import MailboxConnection, SyncRun, User
from activities.models import Activity
from crm.models import Contact
from sandbox.runner import SandboxProcess
from tests.conftest import PASSWORD, mailbox_account
from tests.mailboxes import mime
from tests.test_journeys_browser import (
    BOB,
    INBOX,
    at_provider,
    eventually,
    flash,
    journey,  # noqa: F401 (the fixture: live server, push settings, a real worker)
    move_to_aspire,
    reload_until,
    sign_in_to_aspire,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SENT = {"microsoft": "Sent Items", "google": "SENT"}
QUOTE_ID = "<spring-quote-1@example.com>"

# A push, then a run on the test's one solo worker, behind whatever else it has queued: a loaded
# machine takes longer than a person would wait, not longer than a minute.
FOLLOWED_WITHIN = 60


def deliver(sandbox: SandboxProcess, provider: str, folder: str, subject: str, **fields: Any) -> None:
    sandbox.control("POST", f"/accounts/{provider}/{BOB}/messages",
                    json={"folder": folder, "raw": mime(subject, **{"to": f"Bob Staff <{BOB}>", **fields})})


def runs_finished(connection: MailboxConnection) -> int:
    return SyncRun.objects.filter(connection=connection, kind="mail").exclude(outcome="running").count()


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_conversation_followed_from_drag_to_stop(provider: str, providers_on_sandbox: SandboxProcess,
                                                   live_server: Any, browser_page: Any, alice: User, bob: User,
                                                   contact: Contact) -> None:
    sandbox, live_url, page = providers_on_sandbox, live_server.url, browser_page
    mailbox_account(sandbox, provider, BOB, display_name="Bob Staff")
    deliver(sandbox, provider, INBOX[provider], "Spring cleanup quote", message_id=QUOTE_ID,
            body="Could you quote the spring cleanup?")

    # -- Settings: Sync Email, Sync Aspire Folder, and following conversations on ----------------
    sign_in_to_aspire(page, f"{live_url}/settings/", bob)
    page.get_by_label("Sync Email", exact=True).check()
    page.get_by_label("Sync Aspire Folder", exact=True).check()
    page.get_by_label("Also capture replies to conversations already in Aspire").select_option("on")
    page.get_by_label("Provider").select_option(provider)
    page.locator("#id_sync-mailbox_address").fill(BOB)
    page.locator(".page-head").get_by_role("button", name="Save").click()
    at_provider(page, sandbox, provider, BOB)
    assert flash(page, live_url) == "Connected as Bob Staff <bob@greenleaf.example>."
    bob.refresh_from_db()
    assert bob.follow_conversations is True
    connection = MailboxConnection.objects.get(user=bob)

    # -- One email dragged into Aspire ------------------------------------------------------------
    move_to_aspire(page, sandbox, provider, "Spring cleanup quote")
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    reload_until(page, lambda: page.locator(".timeline article", has_text="Spring cleanup quote"), "the dragged email")

    # -- The customer's reply lands in the Inbox: on the timeline, not dragged --------------------
    deliver(sandbox, provider, INBOX[provider], "Re: Spring cleanup quote", in_reply_to=QUOTE_ID,
            body="Tuesday works.\n\nOn Mon, Bob Staff <bob@greenleaf.example> wrote:\n> Could you quote it?")
    reload_until(page, lambda: page.locator(".timeline article", has_text="Re: Spring cleanup quote"),
                 "the customer's reply, followed", seconds=FOLLOWED_WITHIN)
    page.locator(".timeline article", has_text="Re: Spring cleanup quote").get_by_role("link").first.click()
    page.get_by_text("Captured automatically: follows a conversation in Aspire").wait_for()
    assert page.get_by_role("heading", name="Conversation (2)").is_visible()
    quoted = page.locator("details.quoted")
    assert not quoted.locator(".email-text").is_visible()
    quoted.locator("summary", has_text="Show quoted text").click()
    assert "Could you quote it?" in quoted.locator(".email-text").inner_text()
    reply_page = page.url
    assert "Re: Spring cleanup quote" in [m["subject"] for f in sandbox.control(
        "GET", f"/accounts/{provider}/{BOB}/mailbox")["folders"] if f["name"] == INBOX[provider]
        for m in f["messages"]]  # not moved

    # -- Bob's own reply, written in the mail client, from Sent ------------------------------------
    deliver(sandbox, provider, SENT[provider], "Re: Spring cleanup quote - crew at 8", in_reply_to=QUOTE_ID,
            sender=f"Bob Staff <{BOB}>", to="Dana Whitfield <dana@example.com>")
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    reload_until(page, lambda: page.locator(".timeline article", has_text="crew at 8"), "Bob's reply from Sent",
                 seconds=FOLLOWED_WITHIN)

    # -- A company admin blocks a domain: its mail is never captured automatically ---------------
    admin = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    admin.goto(f"{live_url}/admin/login/")
    admin.get_by_label("Email address").fill(alice.email)
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto(f"{live_url}/admin/mailsync/nevercapture/add/")
    admin.get_by_label("Address or domain").fill("Clinic.example")
    admin.get_by_role("button", name="Save", exact=True).click()
    admin.get_by_text("was added successfully").wait_for()
    before = runs_finished(connection)
    deliver(sandbox, provider, INBOX[provider], "Re: Spring cleanup quote - from the clinic", in_reply_to=QUOTE_ID,
            cc="nurse@clinic.example")
    eventually(lambda: runs_finished(connection) > before, "a sync after the clinic's mail")
    assert not Activity.objects.filter(subject__contains="from the clinic").exists()

    # -- Stop following: later replies stay out ----------------------------------------------------
    page.goto(reply_page)
    page.get_by_role("button", name="Stop following").click()
    page.get_by_text("won't be captured automatically").wait_for()
    before = runs_finished(connection)
    deliver(sandbox, provider, INBOX[provider], "Re: Spring cleanup quote - one more thing", in_reply_to=QUOTE_ID)
    eventually(lambda: runs_finished(connection) > before, "a sync after the later reply")
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    assert not page.locator(".timeline article", has_text="one more thing").count()
    assert not Activity.objects.filter(subject__contains="one more thing").exists()
