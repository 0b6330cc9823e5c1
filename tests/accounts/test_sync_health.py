"""When sync breaks: the user is emailed once and sees a banner on every page until they reconnect;
their company admin sees everyone's connection on Sync health and can ask them to reconnect.
Against the provider sandbox through the real client libraries; mail through Django's locmem backend."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import grants
from accounts.models import Company, MailboxConnection, PushChannel, SyncRun, User
from accounts.selectors import sync_health
from bench.company_data import CompanyGenerator, Size
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess
from sandbox.signin import ProviderSignIn
from tests.conftest import REDIRECT_URI, client_for
from tests.mailboxes import back_to_aspire, connected_mailbox
from tests.mailsync.test_push import push_settings  # noqa: F401 (a fixture)

PROVIDERS = ["microsoft", "google"]
BANNER = "Aspire can no longer sync your mailbox"


def revoke(sandbox: SandboxProcess, address: str) -> None:
    sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": address})


def expire_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every grant counts as about to expire, so the next run refreshes it (and meets the refusal)."""
    monkeypatch.setattr(grants, "REFRESH_LEEWAY_SECONDS", 4 * 3600)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_refresh_emails_the_user_once_shows_the_banner_and_the_admins_row(
        provider: str, providers_on_sandbox: SandboxProcess, alice: User, bob: User,
        django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    bob_client, alice_client = client_for(bob), client_for(alice)
    assert BANNER not in bob_client.get("/contacts/").content.decode()
    revoke(providers_on_sandbox, "bob@greenleaf.example")
    expire_soon(monkeypatch)

    # The run meets the refused grant (its renewal and the run's record both mark it), a later run
    # stops before the provider, and the send queue meets the same refusal: one transition, one email.
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(AuthRevoked):
            run_capture(connection_id=connection.pk, owner="test")
        assert run_capture(connection_id=connection.pk, owner="test") is None
        grants.mark_needs_signin(connection_id=connection.pk, message=AuthRevoked().user_message)
    connection.refresh_from_db()
    assert connection.state == "needs_signin"
    assert SyncRun.objects.filter(connection=connection, outcome="failed").count() == 1
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["bob@greenleaf.example"]
    assert email.subject == "Aspire: sign in again to keep your mail and calendar syncing"
    assert "http://127.0.0.1:8000/settings/" in email.body
    assert "Please sign in again to keep syncing." in email.body  # the connection's own words

    # The banner, on every page, with the way to Settings.
    for path in ("/contacts/", "/calendar/", "/settings/"):
        page = bob_client.get(path).content.decode()
        assert BANNER in page, path
        assert '<a href="/settings/">Reconnect in Settings</a>' in page
    assert BANNER not in alice_client.get("/contacts/").content.decode()  # only for the one whose mailbox it is

    # The company admin's Sync health row: the state, the problem in the Settings panel's words, the button.
    health = alice_client.get("/sync-health/")
    assert health.status_code == 200
    row = _row(health.content.decode(), "Bob Staff")
    assert "Needs sign-in" in row
    assert "bob@greenleaf.example" in row
    assert "Please sign in again to keep syncing." in row
    assert "Last mail sync" in row and "Failed" in row
    assert "Stopped until the mailbox is connected" in row
    assert "Ask to reconnect</button>" in row
    # The head of the page names whom to act on, each a link to their card.
    head = re.search(r'<p class="health-summary".*?</p>', health.content.decode(), flags=re.S)
    assert head is not None
    words = " ".join(re.sub(r"<[^>]+>", "", head.group(0)).split())
    assert words == "0 connected · 1 needs to sign in again: Bob Staff · 1 not connected"
    assert f'<a href="#health-{bob.pk}">Bob Staff</a>' in head.group(0)

    # Reconnecting ends the banner; the next revocation is a new transition and a new email.
    response = bob_client.post("/settings/mailbox/reconnect/")
    callback = ProviderSignIn(providers_on_sandbox, response["Location"], REDIRECT_URI).sign_in(
        "bob@greenleaf.example")
    assert callback is not None
    assert "Connected as" in back_to_aspire(bob_client, callback)
    assert BANNER not in bob_client.get("/contacts/").content.decode()
    assert "Needs sign-in" not in _row(alice_client.get("/sync-health/").content.decode(), "Bob Staff")
    revoke(providers_on_sandbox, "bob@greenleaf.example")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(AuthRevoked):
        run_capture(connection_id=connection.pk, owner="test")
    assert len(mail.outbox) == 2


def _row(page: str, name: str) -> str:
    rows = re.findall(r'<li class="card health-row".*?</li>', page, flags=re.S)
    matching = [row for row in rows if f">{name} <span" in row]
    assert len(matching) == 1, (name, rows)
    return matching[0]


# -- Ask to reconnect ---------------------------------------------------------------------------


@pytest.fixture
def bob_needs_signin(greenleaf: Company, bob: User) -> MailboxConnection:
    return MailboxConnection.objects.create(
        company=greenleaf, user=bob, provider="google", mailbox_address="bob@greenleaf.example",
        state=MailboxConnection.State.NEEDS_SIGNIN, sync_email=True, sync_calendar=True,
        last_error="Aspire's access to this mailbox has ended. Please sign in again to keep syncing.",
    )


def test_ask_to_reconnect_emails_a_link_to_settings_once_an_hour(alice: User, bob_needs_signin: MailboxConnection,
                                                                 settings: Any) -> None:
    settings.SITE_URL = "https://aspire.example"
    client = client_for(alice)
    url = f"/sync-health/{bob_needs_signin.pk}/ask-to-reconnect/"
    response = client.post(url, follow=True)
    assert response.redirect_chain == [("/sync-health/", 302)]
    page = response.content.decode()
    assert "Asked Bob Staff to reconnect: an email with a link to their Settings is on its way to " \
           "bob@greenleaf.example." in page
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["bob@greenleaf.example"]
    assert email.subject == "Alice Admin asks you to reconnect your mailbox in Aspire"
    assert "https://aspire.example/settings/" in email.body
    assert "Please sign in again to keep syncing." in email.body
    # The button is gone for the hour, and the page says when it comes back.
    row = _row(page, "Bob Staff")
    assert "Ask to reconnect</button>" not in row
    assert "Asked within the last hour; you can ask again after" in row

    # A second press (or a replayed form) within the hour sends nothing.
    again = client.post(url, follow=True).content.decode()
    assert "Bob Staff was already asked to reconnect within the last hour." in again
    assert len(mail.outbox) == 1

    # An hour later it may be asked again.
    MailboxConnection.objects.filter(pk=bob_needs_signin.pk).update(
        reconnect_asked_at=timezone.now() - dt.timedelta(minutes=61))
    assert "Ask to reconnect</button>" in _row(client.get("/sync-health/").content.decode(), "Bob Staff")
    client.post(url)
    assert len(mail.outbox) == 2


def test_a_connected_mailbox_is_not_asked_to_reconnect(alice: User, bob_needs_signin: MailboxConnection) -> None:
    MailboxConnection.objects.filter(pk=bob_needs_signin.pk).update(state=MailboxConnection.State.CONNECTED)
    page = client_for(alice).post(f"/sync-health/{bob_needs_signin.pk}/ask-to-reconnect/", follow=True)
    assert "Bob Staff&#x27;s mailbox is connected: there is nothing to reconnect." in page.content.decode()
    assert mail.outbox == []


def test_a_mail_server_that_is_down_is_said_and_the_ask_can_be_repeated(
        alice: User, bob_needs_signin: MailboxConnection, settings: Any) -> None:
    # A real SMTP backend, pointed at a port nothing listens on.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    client = client_for(alice)
    page = client.post(f"/sync-health/{bob_needs_signin.pk}/ask-to-reconnect/", follow=True).content.decode()
    assert "The email to Bob Staff could not be sent. Please try again in a few minutes." in page
    bob_needs_signin.refresh_from_db()
    assert bob_needs_signin.reconnect_asked_at is None  # not counted against the hour
    assert "Ask to reconnect</button>" in _row(page, "Bob Staff")


# -- who may see it -----------------------------------------------------------------------------


def test_only_company_admins_see_sync_health_and_only_their_company(
        alice: User, bob: User, carol: User, operator: User, bob_needs_signin: MailboxConnection) -> None:
    ask = f"/sync-health/{bob_needs_signin.pk}/ask-to-reconnect/"
    # Staff who are not admins, and operators (no company), are refused.
    for user in (bob, operator):
        assert client_for(user).get("/sync-health/").status_code == 403
        assert client_for(user).post(ask).status_code == 403
    assert "Sync health" not in client_for(bob).get("/contacts/").content.decode()
    assert 'href="/sync-health/"' in client_for(alice).get("/contacts/").content.decode()
    # Another company's admin sees only their own company, and cannot poke Greenleaf's rows.
    summit_page = client_for(carol).get("/sync-health/").content.decode()
    assert "Carol Admin" in summit_page
    assert "Bob Staff" not in summit_page and "bob@greenleaf.example" not in summit_page
    assert client_for(carol).post(ask).status_code == 404
    assert client_for(carol).post("/sync-health/not-a-uuid/ask-to-reconnect/").status_code == 404
    assert mail.outbox == []
    # Without the CSRF token the ask is refused.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(ask).status_code == 403
    assert mail.outbox == []
    # A GET does nothing.
    assert client_for(alice).get(ask).status_code == 405


# -- push, in each provider's own words ---------------------------------------------------------

# What Sync health calls the folders each push channel watches: Outlook's folders, Gmail's labels.
PUSH_ROWS = {
    "microsoft": ["Aspire folder", "Calendar", "Inbox (following conversations)",
                  "Sent Items (following conversations)"],
    "google": ["Aspire label", "Calendar", "Inbox (following conversations)",
               "Sent (following conversations)"],
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_push_rows_name_the_folders_as_the_provider_does(provider: str, push_settings: SandboxProcess,  # noqa: F811
                                                         alice: User, bob: User) -> None:
    connection = connected_mailbox(push_settings, bob, provider, "bob@greenleaf.example")
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    run_capture(connection_id=connection.pk, owner="setup")  # the Aspire folder, and the mail push
    row = _row(client_for(alice).get("/sync-health/").content.decode(), "Bob Staff")
    pushes = dict(re.findall(r"<dt>Push: (.*?)</dt><dd[^>]*>(.*?)</dd>", row))
    assert list(pushes) == PUSH_ROWS[provider]
    aspire_folder = PUSH_ROWS[provider][0]
    assert f"On, with the {aspire_folder}" in row
    # The Aspire folder's push and following's (Graph: a subscription per folder; Gmail: one watch
    # on all three labels) are set up by the run; the calendar's by the calendar run, not yet made.
    for label in (aspire_folder, *PUSH_ROWS[provider][2:]):
        assert pushes[label].startswith("Active until"), (label, pushes)
    assert pushes["Calendar"] == "Set up at the next sync"
    if provider == "google":
        assert "Sent Items" not in row and "Aspire folder" not in row


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_following_without_the_aspire_folder_shows_its_push_off_not_pending(
        provider: str, push_settings: SandboxProcess, alice: User, bob: User) -> None:  # noqa: F811
    """Sync Email with following and no Aspire folder: Outlook has no Aspire folder to subscribe to,
    so that row is off (not "Set up at the next sync" for ever); Gmail's one watch, on the Inbox
    and Sent, is still made."""
    connection = connected_mailbox(push_settings, bob, provider, "bob@greenleaf.example")
    connection.sync_aspire_folder = False
    connection.save(update_fields=["sync_aspire_folder"])
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    run_capture(connection_id=connection.pk, owner="setup")
    row = _row(client_for(alice).get("/sync-health/").content.decode(), "Bob Staff")
    pushes = dict(re.findall(r"<dt>Push: (.*?)</dt><dd[^>]*>(.*?)</dd>", row))
    aspire_folder = PUSH_ROWS[provider][0]
    if provider == "microsoft":
        assert pushes[aspire_folder] == "Off"
    else:
        assert pushes[aspire_folder].startswith("Active until")
    for label in PUSH_ROWS[provider][2:]:
        assert pushes[label].startswith("Active until"), (label, pushes)


# -- queries do not grow with the company -------------------------------------------------------


def _staff(company: Company, count: int, start: int) -> None:
    now = timezone.now()
    for n in range(start, start + count):
        user = User.objects.create_user(f"staff{n}@greenleaf.example", "x" * 12, full_name=f"Staff {n}",
                                        company=company)
        if n % 4 == 3:
            continue  # never connected
        state = [MailboxConnection.State.CONNECTED, MailboxConnection.State.NEEDS_SIGNIN,
                 MailboxConnection.State.DISCONNECTED][n % 4 % 3]
        connection = MailboxConnection.objects.create(
            company=company, user=user, provider="microsoft", mailbox_address=f"staff{n}@greenleaf.example",
            state=state, sync_email=True, sync_calendar=True, sync_aspire_folder=True, last_sync_at=now,
            last_error="The mail provider could not complete the request. Aspire will try again shortly.")
        for hours in range(3):
            for kind in SyncRun.Kind:
                SyncRun.objects.create(company=company, connection=connection, kind=kind,
                                       started_at=now - dt.timedelta(hours=hours), outcome="succeeded")
        PushChannel.objects.create(connection=connection, purpose="mail", channel_id=f"sub-{n}",
                                   expires_at=now + dt.timedelta(days=2))


def test_sync_health_makes_the_same_queries_for_a_company_three_times_the_size(
        greenleaf: Company, alice: User, settings: Any) -> None:
    settings.PUSH_BASE_URL = "https://aspire.example"
    client = client_for(alice)
    counts = []
    for added in (4, 8):  # 4 staff, then 12
        _staff(greenleaf, added, start=User.objects.count())
        client.get("/sync-health/")
        with CaptureQueriesContext(db_connection) as captured:
            response = client.get("/sync-health/")
        assert response.status_code == 200
        page = response.content.decode()
        assert page.count('class="card health-row"') == User.objects.filter(company=greenleaf).count()
        assert "Active until" in page and "Needs sign-in" in page and "Never connected a mailbox." in page
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


@pytest.mark.django_db
@pytest.mark.skipif(db_connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_latest_runs_are_read_from_the_index_not_by_scanning_the_companys_runs() -> None:
    size = Size(users=10, contacts=10, properties=5, opportunities=5, work_tickets=5, activities=50,
                heavy_contacts=1, heavy_activities=10, unmatched=5, outbound=5, appointments=10, sync_runs=20_000)
    picks = CompanyGenerator(name="Health plans", size=size, seed=5, log=lambda _: None).generate()
    with db_connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_syncrun")
    with CaptureQueriesContext(db_connection) as captured:
        rows = sync_health(User.objects.get(pk=picks.admin))
    assert len(rows) == 10
    (users_sql,) = [q["sql"] for q in captured.captured_queries if "accounts_syncrun" in q["sql"]]
    with db_connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + users_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on accounts_syncrun" not in plan, plan
    # Four lookups (latest mail and calendar run: outcome and time), each an index scan of one row.
    assert plan.count("Scan using") >= 4 and plan.count("on accounts_syncrun") == 4, plan


# -- the demo's outbox ----------------------------------------------------------------------------


def test_the_demo_shows_the_mail_sent_to_whoever_is_signed_in(
        alice: User, bob: User, bob_needs_signin: MailboxConnection, settings: Any, tmp_path: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    settings.SITE_URL = "http://127.0.0.1:8000"
    client_for(alice).post(f"/sync-health/{bob_needs_signin.pk}/ask-to-reconnect/")
    assert client_for(bob).get("/dev/mail/").status_code == 404  # not in production (DEBUG off)

    settings.DEBUG = True
    page = client_for(bob).get("/dev/mail/").content.decode()
    assert "<h2>Alice Admin asks you to reconnect your mailbox in Aspire</h2>" in page
    assert '<a href="http://127.0.0.1:8000/settings/"' in page
    assert "Nothing sent to you yet." in client_for(alice).get("/dev/mail/").content.decode()  # only one's own
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert client_for(bob).get("/dev/mail/").status_code == 404  # mail really goes out: nothing kept to show
