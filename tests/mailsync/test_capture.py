"""The Aspire → Processed capture pipeline against the sandbox, through the real adapters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.grants import load_grant, store_grant
from accounts.models import MailboxConnection, SyncRun, User
from accounts.moments import moment
from accounts.runs import RunBusy
from activities.models import Activity, EmailMessage
from crm.models import Contact, ContactEmail
from mailsync.capture import run_capture
from mailsync.models import EmailSource, MailSyncState
from providers.errors import Throttled, TransientError
from providers.google import transport
from sandbox.runner import SandboxProcess
from tests.mailboxes import connected_mailbox, drop, mime

PROVIDERS = ["microsoft", "google"]
SAME_EMAIL = Path(__file__).parent / "mail" / "same-email"
ASPIRE = {"microsoft": "Aspire", "google": "Aspire"}


def folder_counts(sandbox: SandboxProcess, provider: str, email: str) -> dict[str, int]:
    mailbox = sandbox.control("GET", f"/accounts/{provider}/{email}/mailbox")
    return {f["name"]: len(f["messages"]) for f in mailbox["folders"]}


def mail_requests(sandbox: SandboxProcess, email: str, since: float) -> list[dict[str, Any]]:
    """Provider API calls for the mailbox (token endpoint calls are not mail requests)."""
    log = sandbox.control("GET", "/requests", params={"account": email, "since": since})["requests"]
    return [r for r in log if r["path"].startswith(("/v1.0", "/gmail", "/batch"))]


@pytest.fixture(params=PROVIDERS)
def bob_mailbox(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    connection = connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")  # creates the Aspire and Processed folders
    return connection


def capture(connection: MailboxConnection) -> SyncRun:
    return run_capture(connection_id=connection.pk, owner="test")


def test_mail_in_aspire_becomes_activities_on_matching_contacts(
    bob_mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess, contact: Contact, greenleaf: Any
) -> None:
    provider, sandbox = bob_mailbox.provider, providers_on_sandbox
    marcus = Contact.objects.create(company=greenleaf, first_name="Marcus", last_name="Lee")
    ContactEmail.objects.create(company=greenleaf, contact=marcus, address="marcus@oakridge.example")
    drop(sandbox, provider, "bob@greenleaf.example", mime("Mulch color", body="Dark brown please"))
    drop(sandbox, provider, "bob@greenleaf.example",
         mime("HOA meeting", sender="Bob <bob@greenleaf.example>", to="MARCUS@OakRidge.example",
              cc="dana@example.com"))
    drop(sandbox, provider, "bob@greenleaf.example", mime("New lead", sender="someone@elsewhere.example"))

    run = capture(bob_mailbox)

    assert (run.outcome, run.items_seen, run.items_imported) == ("succeeded", 3, 3)
    mulch = Activity.objects.get(subject="Mulch color")
    assert (mulch.kind, mulch.origin, mulch.owner_id) == ("email", "captured", bob_mailbox.user_id)
    assert list(mulch.contacts.all()) == [contact]
    assert "Dark brown please" in mulch.email.text_body
    hoa = Activity.objects.get(subject="HOA meeting")
    assert set(hoa.contacts.all()) == {contact, marcus}  # case-insensitive, To and Cc
    assert not Activity.objects.get(subject="New lead").contacts.exists()  # waits in Unmatched
    counts = folder_counts(sandbox, provider, "bob@greenleaf.example")
    assert counts["Aspire"] == 0 and counts["Processed"] == 3
    bob_mailbox.refresh_from_db()
    assert bob_mailbox.last_sync_at == run.finished_at


def test_an_idle_run_makes_exactly_one_mail_request(bob_mailbox: MailboxConnection,
                                                   providers_on_sandbox: SandboxProcess) -> None:
    since = timezone.now().timestamp()
    run = capture(bob_mailbox)
    assert run.items_seen == 0
    requests = mail_requests(providers_on_sandbox, "bob@greenleaf.example", since)
    assert len(requests) == 1, requests


def test_an_idle_run_takes_four_statements_and_asks_for_no_token(bob_mailbox: MailboxConnection,
                                                                 providers_on_sandbox: SandboxProcess) -> None:
    """The hourly run of a mailbox with nothing new: the connection read, the lease claimed with the
    state read, the run inserted, and its end (the run finished, the last successful sync, the
    lease released: one statement on PostgreSQL, three on SQLite). The access token is good, so no
    lock on the connection and no request to the token endpoint."""
    since = timezone.now().timestamp()
    with CaptureQueriesContext(db_connection) as queries:
        run = capture(bob_mailbox)
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    end = ["WITH"] if db_connection.vendor == "postgresql" else ["UPDATE", "UPDATE", "UPDATE"]
    assert statements == ["SELECT", "UPDATE", "INSERT", *end], statements
    assert not any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)
    log = providers_on_sandbox.control("GET", "/requests", params={"since": since})["requests"]
    assert not [r for r in log if "token" in r["path"]]
    assert (run.outcome, run.items_seen) == ("succeeded", 0)
    bob_mailbox.refresh_from_db()
    assert bob_mailbox.last_sync_at == run.finished_at and bob_mailbox.last_error == ""
    state = MailSyncState.objects.get(connection=bob_mailbox)
    assert (state.lease_owner, state.lease_until) == ("", None)


def test_a_token_about_to_expire_is_renewed_before_the_run_and_kept(bob_mailbox: MailboxConnection,
                                                                    providers_on_sandbox: SandboxProcess) -> None:
    grant = load_grant(bob_mailbox)
    store_grant(bob_mailbox, dataclasses.replace(grant, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)))
    bob_mailbox.save(update_fields=["grant_ciphertext", "token_expires_at"])
    since = timezone.now().timestamp()
    run = capture(bob_mailbox)
    assert run.outcome == "succeeded"
    log = providers_on_sandbox.control("GET", "/requests", params={"since": since})["requests"]
    assert len([r for r in log if "token" in r["path"]]) == 1
    bob_mailbox.refresh_from_db()
    renewed = load_grant(bob_mailbox)
    assert renewed.access_token != grant.access_token and not renewed.expires_within(30 * 60)
    # The renewed grant serves the next run as it is.
    since = timezone.now().timestamp()
    assert capture(bob_mailbox).outcome == "succeeded"
    log = providers_on_sandbox.control("GET", "/requests", params={"since": since})["requests"]
    assert not [r for r in log if "token" in r["path"]]


def test_runs_of_two_gmail_mailboxes_on_one_thread_each_read_their_own(
    providers_on_sandbox: SandboxProcess, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread keeps one Gmail client between runs (its connection stays open): each run lends it
    its own grant, so one mailbox's run never reads another's, whether the connection was kept
    open or closed after idling."""
    sandbox = providers_on_sandbox
    mailboxes = {"bob@greenleaf.example": connected_mailbox(sandbox, bob, "google", "bob@greenleaf.example"),
                 "alice@greenleaf.example": connected_mailbox(sandbox, alice, "google", "alice@greenleaf.example")}
    for connection in mailboxes.values():
        run_capture(connection_id=connection.pk, owner="setup")
    for round_, keep_alive in enumerate((60.0, 0.0)):
        monkeypatch.setattr(transport, "KEEP_ALIVE_SECONDS", keep_alive)
        for address in mailboxes:
            drop(sandbox, "google", address, mime(f"For {address} {round_}", to=address))
        for address, connection in mailboxes.items():
            run = capture(connection)
            assert (run.outcome, run.items_imported) == ("succeeded", 1)
            source = EmailSource.objects.get(connection=connection, activity__subject=f"For {address} {round_}")
            assert source.activity.owner_id == connection.user_id
    assert Activity.objects.filter(subject__startswith="For ").count() == 4
    assert all(folder_counts(sandbox, "google", address)["Aspire"] == 0 for address in mailboxes)


def test_capturing_again_never_duplicates(bob_mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess) -> None:
    provider, sandbox = bob_mailbox.provider, providers_on_sandbox
    raw = mime("Invoice question", message_id="<same-message@example.com>")
    drop(sandbox, provider, "bob@greenleaf.example", raw)
    capture(bob_mailbox)
    drop(sandbox, provider, "bob@greenleaf.example", raw)  # the user drags the same mail in again
    run = capture(bob_mailbox)
    assert run.items_imported == 0
    assert Activity.objects.filter(subject="Invoice question").count() == 1


def test_the_same_email_from_two_mailboxes_is_one_activity_with_two_sources(
    providers_on_sandbox: SandboxProcess, alice: User, bob: User
) -> None:
    sandbox = providers_on_sandbox
    bobs = connected_mailbox(sandbox, bob, "google", "bob@greenleaf.example")
    alices = connected_mailbox(sandbox, alice, "microsoft", "alice@greenleaf.example")
    for connection in (bobs, alices):
        run_capture(connection_id=connection.pk, owner="setup")
    raw = mime("Site walk notes", to="bob@greenleaf.example, alice@greenleaf.example",
               message_id="<walk-notes@example.com>")
    drop(sandbox, "google", "bob@greenleaf.example", raw)
    drop(sandbox, "microsoft", "alice@greenleaf.example", raw)
    capture(bobs)
    capture(alices)
    activity = Activity.objects.get(subject="Site walk notes")
    assert set(EmailSource.objects.filter(activity=activity).values_list("connection_id", flat=True)) == {
        bobs.pk, alices.pk}


def test_mail_without_a_message_id_is_still_captured_once(bob_mailbox: MailboxConnection,
                                                          providers_on_sandbox: SandboxProcess) -> None:
    raw = mime("No id here").replace("Message-ID:", "X-Removed-Message-ID:")
    drop(providers_on_sandbox, bob_mailbox.provider, "bob@greenleaf.example", raw)
    capture(bob_mailbox)
    drop(providers_on_sandbox, bob_mailbox.provider, "bob@greenleaf.example", raw)
    capture(bob_mailbox)
    email = EmailMessage.objects.get(activity__subject="No id here")
    assert email.message_id == "" and email.dedupe_key.startswith("digest:")


def test_copies_from_two_providers_meet_and_distinct_mail_never_does(
    providers_on_sandbox: SandboxProcess, bob: User, alice: User
) -> None:
    """Mail without a Message-ID: the copy Graph serves (MIME rebuilt by Exchange, its own headers)
    and the copy Gmail serves (its delivery headers on top) are one email; notices that differ
    only in an attachment, in the HTML or in To are four."""
    sandbox = providers_on_sandbox
    bobs = connected_mailbox(sandbox, bob, "microsoft", "bob@greenleaf.example")
    alices = connected_mailbox(sandbox, alice, "google", "alice@greenleaf.example")
    for connection in (bobs, alices):
        run_capture(connection_id=connection.pk, owner="setup")
    graph_copy, gmail_copy = (SAME_EMAIL / f"site-report-as-{name}-serves-it.eml" for name in ("graph", "gmail"))
    drop(sandbox, "microsoft", "bob@greenleaf.example", graph_copy.read_bytes())
    drop(sandbox, "google", "alice@greenleaf.example", gmail_copy.read_bytes())
    notices = ["notice.eml", "notice-other-attachment.eml", "notice-other-html.eml", "notice-other-to.eml"]
    for name in notices:
        drop(sandbox, "microsoft", "bob@greenleaf.example", (SAME_EMAIL / name).read_bytes())

    capture(bobs)
    capture(alices)

    report = Activity.objects.get(subject="Wall finished \u2013 photos")
    assert set(EmailSource.objects.filter(activity=report).values_list("connection_id", flat=True)) == {
        bobs.pk, alices.pk}
    invoices = Activity.objects.filter(subject="Your invoice is ready").select_related("email")
    assert invoices.count() == len(notices)
    assert len({activity.email.dedupe_key for activity in invoices}) == len(notices)
    assert {activity.email.html_body.strip() for activity in invoices} == {
        "<p>Your invoice is ready. Total: <b>$120.00</b></p>", "<p>Your invoice is ready. Total: <b>$210.00</b></p>"}
    assert {sha for activity in invoices for sha in activity.email.attachments.values_list("sha256", flat=True)} == {
        hashlib.sha256(b"%PDF-1.4\ninvoice 1041 total 120.00\n%%EOF\n").hexdigest(),
        hashlib.sha256(b"%PDF-1.4\ninvoice 1042 total 210.00\n%%EOF\n").hexdigest()}
    # Captured with its attachments, each email says it has one (what "Has an attachment" reads).
    assert all(activity.email.has_attachment for activity in invoices)


# -- the contract: nothing lost, nothing twice ------------------------------------------------


def test_a_failure_between_commit_and_move_leaves_nothing_behind_and_nothing_twice(
    bob_mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    provider, sandbox = bob_mailbox.provider, providers_on_sandbox
    for n in range(3):
        drop(sandbox, provider, "bob@greenleaf.example", mime(f"Estimate {n}"))
    move_path = "/\\$batch" if provider == "microsoft" else "batchModify"
    sandbox.control("POST", "/faults", json={"kind": "drop", "path": move_path, "count": 1})
    with pytest.raises(TransientError):
        capture(bob_mailbox)
    # Committed before the move: the activities exist and the mail is still in Aspire.
    assert Activity.objects.filter(subject__startswith="Estimate").count() == 3
    assert folder_counts(sandbox, provider, "bob@greenleaf.example")["Aspire"] == 3
    run = capture(bob_mailbox)
    assert (run.items_already_there, run.items_imported) == (3, 0)
    assert Activity.objects.filter(subject__startswith="Estimate").count() == 3
    counts = folder_counts(sandbox, provider, "bob@greenleaf.example")
    assert counts["Aspire"] == 0 and counts["Processed"] == 3


def test_a_failure_between_two_messages_commits_nothing_of_the_page(bob_mailbox: MailboxConnection,
                                                                    providers_on_sandbox: SandboxProcess) -> None:
    provider, sandbox = bob_mailbox.provider, providers_on_sandbox
    for n in range(3):
        drop(sandbox, provider, "bob@greenleaf.example", mime(f"Proposal {n}"))
    fetch_path = "/\\$value" if provider == "microsoft" else "/messages/[^/]+$"
    # The second message's fetch fails: the page is not committed and nothing is moved.
    sandbox.control("POST", "/faults", json=[{"kind": "delay", "seconds": 0, "path": fetch_path, "count": 1},
                                             {"kind": "status", "status": 500, "path": fetch_path, "count": 1}])
    with pytest.raises(TransientError):
        capture(bob_mailbox)
    assert not Activity.objects.filter(subject__startswith="Proposal").exists()
    assert folder_counts(sandbox, provider, "bob@greenleaf.example")["Aspire"] == 3
    capture(bob_mailbox)
    assert Activity.objects.filter(subject__startswith="Proposal").count() == 3


def test_throttling_is_honoured_and_the_run_says_it_will_resume(bob_mailbox: MailboxConnection,
                                                                providers_on_sandbox: SandboxProcess) -> None:
    drop(providers_on_sandbox, bob_mailbox.provider, "bob@greenleaf.example", mime("Throttled one"))
    providers_on_sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 7,
                                                          "path": "/(v1.0|gmail)/", "count": 1})
    with pytest.raises(Throttled) as throttled:
        capture(bob_mailbox)
    assert throttled.value.retry_after == 7
    run = SyncRun.objects.filter(connection=bob_mailbox).first()
    assert run is not None and run.outcome == "retrying"
    assert capture(bob_mailbox).items_imported == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_on_one_connection_never_import_twice(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    for n in range(20):
        drop(providers_on_sandbox, "google", "bob@greenleaf.example", mime(f"Race {n}"))
    outcomes: list[str] = []

    def worker(name: str) -> None:
        try:
            outcomes.append(run_capture(connection_id=connection.pk, owner=name).outcome)
        except RunBusy:
            outcomes.append("busy")
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["busy", "succeeded"], ["succeeded", "succeeded"])
    assert Activity.objects.filter(subject__startswith="Race").count() == 20
    assert EmailSource.objects.count() == 20


# -- folders -----------------------------------------------------------------------------------


def test_a_deleted_aspire_folder_is_made_again_and_the_user_is_told(bob_mailbox: MailboxConnection,
                                                                   providers_on_sandbox: SandboxProcess) -> None:
    User.objects.filter(pk=bob_mailbox.user_id).update(time_zone="America/Chicago")
    state = MailSyncState.objects.get(connection=bob_mailbox)
    old_id = state.aspire_folder_id
    delete_folder(providers_on_sandbox, bob_mailbox, old_id)
    run = capture(bob_mailbox)
    assert run.outcome == "partial"
    assert "created it again" in run.error  # shown in the status panel
    state.refresh_from_db()
    assert state.aspire_folder_id != old_id
    assert "created it again" in state.folder_notice
    # When, on the user's own clock (the worker's is UTC), as every page writes a moment.
    chicago = zoneinfo.ZoneInfo("America/Chicago")
    assert f"created it again on {moment(state.folders_checked_at, chicago)}." in state.folder_notice
    assert "Aspire" in folder_counts(providers_on_sandbox, bob_mailbox.provider, "bob@greenleaf.example")


def delete_folder(sandbox: SandboxProcess, connection: MailboxConnection, folder_id: str) -> None:
    """As the user would, in their mail client."""
    import requests

    from accounts.grants import fresh_grant

    token = fresh_grant(connection_id=connection.pk).access_token
    session = requests.Session()
    session.trust_env = False
    if connection.provider == "microsoft":
        url = f"{sandbox.base_url}/v1.0/me/mailFolders/{folder_id}"
    else:
        url = f"{sandbox.base_url}/gmail/v1/users/me/labels/{folder_id}"
    response = session.delete(url, headers={"Authorization": f"Bearer {token}"}, verify=str(sandbox.ca_path),
                              timeout=10)
    assert response.status_code in (200, 204), response.text


def test_a_disconnected_mailbox_is_not_captured(bob: User, greenleaf: Any) -> None:
    connection = MailboxConnection.objects.create(company=greenleaf, user=bob, provider="google",
                                                  mailbox_address="bob@greenleaf.example", sync_email=True,
                                                  sync_aspire_folder=True)
    assert run_capture(connection_id=connection.pk, owner="test") is None
    assert not SyncRun.objects.exists()


def test_mail_the_user_moves_from_the_inbox_into_aspire_is_captured(
    bob_mailbox: MailboxConnection, providers_on_sandbox: SandboxProcess
) -> None:
    import requests

    provider, sandbox = bob_mailbox.provider, providers_on_sandbox
    inbox = "Inbox" if provider == "microsoft" else "INBOX"
    drop(sandbox, provider, "bob@greenleaf.example", mime("From the inbox"), folder=inbox)
    # The sandbox's mailbox page is the demo's mail client: "Move to Aspire" on the message.
    page_url = f"{sandbox.base_url}/_sandbox/mail/{provider}/bob@greenleaf.example"
    session = requests.Session()
    session.trust_env = False
    page = session.get(page_url, verify=str(sandbox.ca_path), timeout=10).text
    assert "From the inbox" in page and "Move to Aspire" in page
    inbox_folder = next(f for f in sandbox.control("GET", f"/accounts/{provider}/bob@greenleaf.example/mailbox")[
        "folders"] if f["name"].lower() == "inbox")
    message_id = inbox_folder["messages"][0]["id"]
    moved = session.post(page_url, data={"message_id": message_id, "folder": "Aspire"}, verify=str(sandbox.ca_path),
                         timeout=10)
    assert moved.ok and "From the inbox" in moved.text
    run = capture(bob_mailbox)
    assert run.items_imported == 1
    assert Activity.objects.filter(subject="From the inbox").exists()
