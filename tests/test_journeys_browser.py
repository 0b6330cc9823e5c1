"""Every journey of the help article, walked by people in a real Chromium, on each provider.

Bob connects his own mailbox with its one-time code; Alice, his company admin, meets every
refusal (another account signed in, a shared mailbox, a distribution list, an alias, Bob's own
mailbox); Bob then moves mail into Aspire from the sandbox's mailbox page (the stand-in for
Outlook and Gmail), sets its Regarding, files unmatched mail on a contact, writes to a customer,
makes appointments both ways, and Alice sees his private calendar as busy blocks. Then Bob
resyncs exactly as the article says, disconnects and connects again. Everything runs for real:
the live server, the provider sandbox through the real client libraries, and a Celery worker
that syncs when the sandbox pushes notifications, as in production. No request to Aspire
answers 404 on the way.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MailboxConnection, User
from activities.models import Activity
from crm.models import Contact, WorkTicket
from sandbox.runner import SandboxProcess
from tests.conftest import PASSWORD, mailbox_account
from tests.mailboxes import mime
from tests.workers import real_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BOB, CODE = "bob@greenleaf.example", "246810"
PROVIDER_LABEL = {"microsoft": "Microsoft 365", "google": "Google"}
INBOX = {"microsoft": "Inbox", "google": "INBOX"}
TOPIC, PUSH_ACCOUNT = "projects/aspire-journeys/topics/gmail", "gmail-push@aspire-journeys.iam.gserviceaccount.com"
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


@pytest.fixture
def journey(settings: Any, live_server: Any, providers_on_sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    """The product as deployed, pointed at the sandbox: sign-in comes back to the live server,
    providers push to it, and a worker (default, mail and calendar queues) does the syncing."""
    sandbox = providers_on_sandbox
    settings.OAUTH_REDIRECT_URI = f"{live_server.url}/settings/mailbox/callback/"
    settings.PUSH_BASE_URL = live_server.url
    settings.GOOGLE_PUBSUB_TOPIC = TOPIC
    # Gmail pushes are signed by Pub/Sub for its service account (the sandbox's key, here).
    settings.GOOGLE_PUBSUB_SERVICE_ACCOUNT = PUSH_ACCOUNT
    settings.GOOGLE_PUBSUB_CERTS_URL = f"{sandbox.base_url}/oauth2/v1/certs"
    sandbox.control("PUT", f"/pubsub/topics/{TOPIC}",
                    json={"push_endpoint": f"{live_server.url}/hooks/google/pubsub/",
                          "service_account_email": PUSH_ACCOUNT})
    with real_worker(queues="default,mail,send,calendar", hostname="journeys-worker@%h"):
        yield sandbox


def eventually(check: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.3)


def reload_until(page: Any, locator: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    def shown() -> Any:
        found = locator()
        if found.count():
            return found
        page.reload()
        return None
    return eventually(shown, what, seconds)


def sign_in_to_aspire(page: Any, url: str, user: User) -> None:
    page.goto(url)
    page.get_by_label("Email address").first.fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="User settings").wait_for()


def save_sync_settings(page: Any, live_url: str, provider: str, address: str, *, private: bool = False) -> None:
    """The article's steps: Settings, tick Sync Email (Sync Aspire Folder) and Sync Calendar, the
    calendar privacy, the provider, the address, Save in the upper right."""
    page.goto(f"{live_url}/settings/")
    page.get_by_label("Sync Email", exact=True).check()
    page.get_by_label("Sync Aspire Folder", exact=True).check()
    page.get_by_label("Sync Calendar", exact=True).check()
    page.get_by_label("Private" if private else "Public", exact=True).check()
    page.get_by_label("Provider").select_option(provider)
    page.locator("#id_sync-mailbox_address").fill(address)
    page.locator(".page-head").get_by_role("button", name="Save").click()


def at_provider(page: Any, sandbox: SandboxProcess, provider: str, email: str, code: str | None = None) -> None:
    """The provider's own sign-in page (the sandbox's): address, password, then the one-time code."""
    page.wait_for_url(f"{sandbox.base_url}/**")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("password")
    page.locator("button[type=submit]").first.click()
    if code is not None:
        page.get_by_label("code", exact=False).fill(code)
        page.locator("button[type=submit]").first.click()


def cancel_at_provider(page: Any, provider: str) -> None:
    if provider == "microsoft":
        page.locator("#cancel").click()
    else:
        page.get_by_role("button", name="Cancel").click()


def flash(page: Any, live_url: str) -> str:
    page.wait_for_url(f"{live_url}/settings/")
    return " ".join(page.locator(".flash").first.inner_text().split())


def connect_bob(page: Any, live_url: str, sandbox: SandboxProcess, provider: str, *, private: bool = False) -> None:
    save_sync_settings(page, live_url, provider, BOB, private=private)
    at_provider(page, sandbox, provider, BOB, CODE)
    assert flash(page, live_url) == "Connected as Bob Staff <bob@greenleaf.example>."
    status = " ".join(page.locator(".status-line").inner_text().split())
    assert status == f"Connected Bob Staff <bob@greenleaf.example> · {PROVIDER_LABEL[provider]}"


def mailbox_page(sandbox: SandboxProcess, provider: str) -> str:
    return f"{sandbox.base_url}/_sandbox/mail/{provider}/{BOB}"


def move_to_aspire(page: Any, sandbox: SandboxProcess, provider: str, subject: str) -> None:
    """In the mail client (the sandbox's mailbox page): Move to Aspire. The button shows once the
    first sync has made the Aspire folder."""
    page.goto(mailbox_page(sandbox, provider))
    row = reload_until(page, lambda: page.locator("li", has_text=subject).get_by_role("button", name="Move to Aspire"),
                       "the Aspire folder made by the first sync")
    row.click()
    page.wait_for_load_state("load")


def sandbox_events(sandbox: SandboxProcess, provider: str) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", f"/accounts/{provider}/{BOB}/events")["events"])


def event_subjects(sandbox: SandboxProcess, provider: str) -> set[str]:
    return {str(event.get("subject") or event.get("summary") or "") for event in sandbox_events(sandbox, provider)}


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_the_help_articles_journeys_end_to_end(provider: str, journey: SandboxProcess, live_server: Any,
                                               browser_page: Any, alice: User, bob: User, contact: Contact,
                                               work_ticket: WorkTicket) -> None:
    sandbox, live_url = journey, live_server.url
    mailbox_account(sandbox, provider, BOB, display_name="Bob Staff", mfa=True, mfa_code=CODE)
    mailbox_account(sandbox, provider, "robert.home@greenleaf.example", display_name="Robert at home")
    mailbox_account(sandbox, provider, "office@greenleaf.example", display_name="Greenleaf Office", kind="shared")
    mailbox_account(sandbox, provider, "crews@greenleaf.example", display_name="All Crews", kind="distribution_list")
    mailbox_account(sandbox, provider, "robert@greenleaf.example", kind="alias", alias_of=BOB)
    for subject, sender in (("Mulch delivery this Friday?", "Dana Whitfield <dana@example.com>"),
                            ("Quote for lawn care", "Unknown Sender <newlead@example.net>")):
        sandbox.control("POST", f"/accounts/{provider}/{BOB}/messages", json={
            "folder": INBOX[provider], "raw": mime(subject, sender=sender, to=f"Bob Staff <{BOB}>",
                                                   body="Hello from the journeys")})

    page = browser_page  # Bob's browser
    colleague = page.context.browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    alice_page = colleague.new_page()
    alice_page.set_default_timeout(15_000)
    not_found: list[str] = []
    for tab in (page, alice_page):
        tab.on("response", lambda response: not_found.append(response.url)
               if response.status == 404 and response.url.startswith(live_url) else None)

    # -- Connect with MFA; a private calendar (nobody in Shared With) --------------------------
    sign_in_to_aspire(page, f"{live_url}/settings/", bob)
    connect_bob(page, live_url, sandbox, provider, private=True)
    connection = MailboxConnection.objects.get(user=bob)
    assert (connection.sync_email, connection.sync_aspire_folder, connection.sync_calendar,
            connection.calendar_privacy) == (True, True, True, "private")

    # -- The refusals, met by Alice in her own settings; nothing of hers is saved -----------------
    sign_in_to_aspire(alice_page, f"{live_url}/settings/", alice)
    refusals: list[tuple[str, str, str | None, Callable[[str], bool]]] = [
        # (address entered, account signed in at the provider, its code, what Aspire says)
        ("alice@greenleaf.example", "robert.home@greenleaf.example", None,
         lambda text: text.startswith("You signed in as robert.home@greenleaf.example, but the email address "
                                      "entered is alice@greenleaf.example.")),
        ("robert@greenleaf.example", "robert@greenleaf.example", CODE,
         lambda text: "robert@greenleaf.example is an alias of bob@greenleaf.example" in text
         or text.startswith("You signed in as bob@greenleaf.example, but the email address entered is robert@")),
        (BOB, BOB, CODE,
         lambda text: text.startswith("bob@greenleaf.example is already connected to your colleague Bob Staff. "
                                      "One mailbox can serve only one Aspire user")),
    ]
    if provider == "microsoft":
        refusals += [
            ("office@greenleaf.example", "office@greenleaf.example", None,
             lambda text: text.startswith("office@greenleaf.example is a shared mailbox, which Aspire can't sync.")),
            # Microsoft ends the sign-in of a distribution list and says why (AADSTS50034).
            ("crews@greenleaf.example", "crews@greenleaf.example", None,
             lambda text: text.startswith("Microsoft 365 has no user account with that address, so nothing "
                                          "changed. Distribution lists and groups can't sign in")),
        ]
    for entered, signed_in, code, says in refusals:
        save_sync_settings(alice_page, live_url, provider, entered)
        at_provider(alice_page, sandbox, provider, signed_in, code)
        text = flash(alice_page, live_url)
        assert says(text), (entered, text)
        assert "No mailbox is connected" in alice_page.locator(".status").inner_text()
    if provider == "google":
        # Google refuses a shared mailbox (a collaborative inbox) and a group on its own page:
        # they are Google Groups, which have no account to sign in to.
        for entered in ("office@greenleaf.example", "crews@greenleaf.example"):
            save_sync_settings(alice_page, live_url, provider, entered)
            at_provider(alice_page, sandbox, provider, entered)
            assert "Google Group" in alice_page.get_by_role("alert").inner_text()
            cancel_at_provider(alice_page, provider)
            assert flash(alice_page, live_url).startswith("Google did not give Aspire access, so nothing changed")
    assert not MailboxConnection.objects.filter(user=alice).exclude(state="disconnected").exists()

    # -- Move to Aspire → the customer's timeline: Bob's connection survived every refusal -------
    move_to_aspire(page, sandbox, provider, "Mulch delivery this Friday?")
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    timeline = reload_until(page, lambda: page.locator(".timeline article", has_text="Mulch delivery this Friday?"),
                            "the captured email on Dana's timeline")
    assert "Captured from mailbox" in timeline.inner_text()
    page.goto(mailbox_page(sandbox, provider))
    reload_until(page, lambda: page.locator("h2", has_text="Processed (1)"), "the message moved on to Processed")
    connection.refresh_from_db()
    assert connection.state == "connected"

    # -- Regarding: empty when captured; set it to a work ticket ---------------------------------
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    page.locator(".timeline").get_by_role("link", name="Mulch delivery this Friday?").click()
    page.get_by_role("heading", name="Mulch delivery this Friday?").wait_for()
    assert "Nothing yet" in page.locator(".email-facts").inner_text()
    page.get_by_label("Search opportunities, properties and work tickets").fill("1041")
    page.get_by_role("radio", name="Work ticket #1041").check()
    page.get_by_role("button", name="Save Regarding").click()
    page.get_by_text("now regarding Work ticket #1041").wait_for()
    page.locator(".email-facts").get_by_role("link", name="Work ticket #1041").click()
    page.get_by_role("heading", name="Work ticket #1041").wait_for()
    assert "Mulch delivery this Friday?" in page.locator(".timeline").inner_text()

    # -- Unmatched mail → file it on a contact ----------------------------------------------------
    move_to_aspire(page, sandbox, provider, "Quote for lawn care")
    page.goto(f"{live_url}/settings/")
    nav = page.get_by_role("navigation", name="Main").get_by_role("link", name="Unmatched mail")
    reload_until(page, lambda: page.get_by_role("navigation", name="Main").locator(".nav-count"),
                 "the unmatched email in the top bar")
    nav.click()
    entry = page.locator(".mail-list li", has_text="Quote for lawn care")
    assert "Unknown Sender <newlead@example.net>" in entry.inner_text()
    entry.get_by_role("link").click()
    page.get_by_label("Search contacts").fill("Dana")
    page.get_by_role("radio", name="Dana Whitfield").check()
    page.get_by_role("button", name="File on contact").click()
    page.get_by_text("Filed on Dana Whitfield.").wait_for()
    assert page.get_by_role("navigation", name="Main").locator(".nav-count").count() == 0

    # -- Send from Aspire: through Bob's own mailbox, into its Sent folder ------------------------
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    page.get_by_role("link", name="Write email").click()
    page.get_by_role("heading", name="New email").wait_for()
    assert page.get_by_label("To").input_value() == "dana@example.com"
    page.get_by_label("Subject").fill("Mulch is on Friday")
    page.get_by_label("Message").fill("Hi Dana,\n\nThe crew spreads it on Friday morning.\n\nBob")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Mulch is on Friday").wait_for()
    page.get_by_role("banner").get_by_role("link", name="Outbox").click()
    reload_until(page, lambda: page.locator("article.outbound", has_text="Mulch is on Friday")
                 .locator(".outbound-state[data-state='sent']"), "the message sent by the worker")
    page.goto(mailbox_page(sandbox, provider))
    assert "Mulch is on Friday" in page.locator("body").inner_text()  # in Bob's Sent folder
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    sent = page.locator(".timeline article", has_text="Mulch is on Friday")
    assert "Sent from Aspire" in sent.inner_text()

    # -- Calendar both ways -----------------------------------------------------------------------
    today = timezone.now().astimezone(CHICAGO).date()
    week = f"{live_url}/calendar/?view=week&date={today.isoformat()}"
    page.goto(week)
    page.get_by_role("link", name="New appointment").click()
    page.get_by_label("Title").fill("Spring cleanup estimate")
    page.get_by_label("Date").fill(today.isoformat())
    page.get_by_label("Starts").fill("09:30")
    page.get_by_label("Ends").fill("10:30")
    page.get_by_label("Location").fill("1402 Cedar Bend Dr, Austin")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name="My calendar").wait_for()
    eventually(lambda: "Spring cleanup estimate" in event_subjects(sandbox, provider),
               "the appointment made in Aspire in the provider's calendar")
    start = dt.datetime.combine(today, dt.time(13), CHICAGO)
    sandbox.control("POST", f"/accounts/{provider}/{BOB}/events", json={
        "subject": "Site walk: Oak Ridge Commons", "location": "900 Oak Ridge Pkwy", "time_zone": "America/Chicago",
        "start": start.replace(tzinfo=None).isoformat(),
        "end": (start + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()})
    page.goto(week)
    made_outside = reload_until(page, lambda: page.locator(".cal-item", has_text="Site walk: Oak Ridge Commons"),
                                "the event made in the provider's calendar, in Aspire")
    made_outside.get_by_role("link").click()
    page.get_by_text("read-only here").first.wait_for()  # made outside Aspire: read-only
    assert page.get_by_role("link", name="Edit").count() == 0

    # -- Privacy: Alice sees Bob's private calendar as busy blocks --------------------------------
    alice_page.goto(f"{live_url}/calendar/?view=week&date={today.isoformat()}")
    alice_page.get_by_label("Calendar of").select_option(label="Bob Staff")
    alice_page.get_by_role("heading", name="Bob Staff\u2019s calendar").wait_for()
    days = alice_page.locator(".cal-days").inner_text()
    assert days.count("Busy") >= 2
    for detail in ("Spring cleanup estimate", "Site walk", "Cedar Bend", "Oak Ridge"):
        assert detail not in days

    # -- Resync exactly as the article says ------------------------------------------------------
    page.goto(f"{live_url}/settings/")
    folder = page.get_by_label("Sync Aspire Folder", exact=True)
    assert folder.is_checked() and folder.is_enabled()
    page.get_by_label("Sync Email", exact=True).uncheck()
    assert folder.is_disabled() and not folder.is_checked()  # part of Sync Email
    page.get_by_label("Sync Calendar", exact=True).uncheck()
    page.locator(".page-head").get_by_role("button", name="Save").click()
    assert flash(page, live_url) == ("Sync is off and your mailbox is disconnected. Activities already in Aspire "
                                     "stay there.")
    assert "No mailbox is connected" in page.locator(".status").inner_text()
    page.goto(f"{live_url}/settings/")  # "Go back into your User Settings screen"
    page.get_by_label("Sync Email", exact=True).check()
    assert page.get_by_label("Sync Aspire Folder", exact=True).is_enabled()
    page.get_by_label("Sync Aspire Folder", exact=True).check()
    page.get_by_label("Sync Calendar", exact=True).check()
    page.get_by_label("Provider").select_option(provider)
    page.locator("#id_sync-mailbox_address").fill(BOB)
    page.locator(".page-head").get_by_role("button", name="Save").click()
    at_provider(page, sandbox, provider, BOB, CODE)
    assert flash(page, live_url) == "Connected as Bob Staff <bob@greenleaf.example>."

    # -- Disconnect: the button, its confirmation; what was imported stays -----------------------
    page.get_by_role("link", name="Disconnect").click()
    confirmation = page.locator(".card").inner_text()
    assert "Emails and appointments already in Aspire stay there." in confirmation
    page.get_by_role("button", name="Disconnect").click()
    assert flash(page, live_url).startswith("Sync is off and your mailbox is disconnected.")
    assert MailboxConnection.objects.get(user=bob).state == "disconnected"
    assert Activity.objects.filter(subject="Mulch delivery this Friday?", contacts=contact).exists()

    # -- Reconnect: the same steps as the first time; syncing picks up where it left off ----------
    connect_bob(page, live_url, sandbox, provider)
    sandbox.control("POST", f"/accounts/{provider}/{BOB}/messages", json={
        "folder": INBOX[provider], "raw": mime("Back again", sender="Dana Whitfield <dana@example.com>", to=BOB)})
    move_to_aspire(page, sandbox, provider, "Back again")
    page.goto(f"{live_url}{contact.get_absolute_url()}")
    reload_until(page, lambda: page.locator(".timeline article", has_text="Back again"),
                 "mail captured after reconnecting")
    assert Activity.objects.filter(subject="Mulch delivery this Friday?").count() == 1  # nothing twice

    assert not_found == []
    colleague.close()
