"""The Google adapter against the sandbox: real sign-in pages, the real client libraries, and the
sandbox's faults standing in for Google's bad days."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
from collections import Counter
from email.message import EmailMessage
from typing import Any

import pytest

from providers.base import Grant, MailboxKind, MailProvider
from providers.errors import (
    AuthRevoked,
    NotFound,
    ProviderError,
    SignInCancelled,
    SignInFailed,
    Throttled,
    TransientError,
)
from providers.google import GoogleConfig, GoogleProvider
from providers.google import gmail as gmail_calls
from sandbox.runner import SandboxProcess
from tests.sandbox.google_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Redirect, sign_in

ALICE = "alice@greenleaf-landscaping.com"
PASSWORD = "correct horse"
CUSTOMER = "pat.customer@example.org"


@pytest.fixture
def google(sandbox: SandboxProcess) -> GoogleProvider:
    base = sandbox.base_url
    return GoogleProvider(GoogleConfig(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI,
        auth_uri=f"{base}/o/oauth2/v2/auth", token_uri=f"{base}/token", revoke_uri=f"{base}/revoke",
        api_endpoint=base, ca_bundle=str(sandbox.ca_path), timeout=10,
    ))


def create_account(sandbox: SandboxProcess, email: str, **fields: Any) -> None:
    sandbox.control("POST", "/accounts", json={"provider": "google", "email": email, "password": PASSWORD,
                                               "display_name": "Alice Gardner", **fields})


def connect(sandbox: SandboxProcess, google: GoogleProvider, email: str, *, mfa_code: str | None = None) -> Grant:
    """The whole sign-in as the app runs it: begin, the user's pages, complete."""
    request = google.begin_sign_in(state="state-1", login_hint=email)
    redirect = sign_in(sandbox, request.url, email, PASSWORD, mfa_code=mfa_code)
    assert isinstance(redirect, Redirect), redirect.text
    assert redirect.query["state"] == "state-1"
    return google.complete_sign_in(flow=request.flow, params=redirect.query)


@pytest.fixture
def grant(sandbox: SandboxProcess, google: GoogleProvider) -> Grant:
    create_account(sandbox, ALICE)
    return connect(sandbox, google, ALICE)


def operations(sandbox: SandboxProcess) -> Counter[str]:
    return Counter(entry["operation"] for entry in sandbox.control("GET", "/requests")["requests"])


def mime(subject: str, *, sender: str = CUSTOMER, to: str = ALICE, body: str = "Hello") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = email.utils.make_msgid(domain="example.org")
    message["Date"] = email.utils.format_datetime(dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC))
    message.set_content(body)
    return bytes(message)


def put(sandbox: SandboxProcess, label: str, raw: bytes) -> str:
    created = sandbox.control("POST", f"/accounts/google/{ALICE}/messages", json={
        "folder": label, "raw_base64": base64.b64encode(raw).decode()})
    return str(created["id"])


def labels_of(sandbox: SandboxProcess) -> dict[str, set[str]]:
    """Message ids per label name, as the sandbox holds them."""
    mailbox = sandbox.control("GET", f"/accounts/google/{ALICE}/mailbox")
    return {folder["name"]: {m["id"] for m in folder["messages"]} for folder in mailbox["folders"]}


def fault(sandbox: SandboxProcess, **spec: Any) -> None:
    sandbox.control("POST", "/faults", json=spec)


# -- sign-in -----------------------------------------------------------------------------

def test_the_adapter_is_a_mail_provider(google: GoogleProvider) -> None:
    provider: MailProvider = google
    assert provider.kind == "google"
    assert "https://www.googleapis.com/auth/gmail.modify" in provider.scopes


def test_sign_in_gives_a_grant_with_a_refresh_token(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE)
    request = google.begin_sign_in(state="state-1", login_hint=ALICE)
    assert "code_challenge_method=S256" in request.url and "access_type=offline" in request.url
    assert "prompt=consent" in request.url and "include_granted_scopes=true" in request.url
    sign_in_page = sandbox.session.get(request.url, verify=str(sandbox.ca_path)).text
    assert f'value="{ALICE}"' in sign_in_page  # the login hint prefills the address
    assert set(request.flow) == {"code_verifier", "redirect_uri", "scopes"}

    grant = connect(sandbox, google, ALICE)

    assert grant.data["refresh_token"] and grant.access_token
    assert set(grant.scopes) == set(google.scopes)
    assert dt.timedelta(minutes=55) < grant.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    assert CLIENT_SECRET not in repr(grant.data) and grant.access_token not in repr(grant)


def test_sign_in_with_a_one_time_code(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE, mfa=True, mfa_code="424242")
    grant = connect(sandbox, google, ALICE, mfa_code="424242")
    assert grant.data["refresh_token"]
    assert google.identify(grant).address == ALICE


def test_cancelled_sign_in(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE)
    request = google.begin_sign_in(state="state-1")
    redirect = sign_in(sandbox, request.url, ALICE, PASSWORD, cancel=True)
    assert isinstance(redirect, Redirect)
    with pytest.raises(SignInCancelled) as raised:
        google.complete_sign_in(flow=request.flow, params=redirect.query)
    assert raised.value.permanent and "cancelled" in raised.value.user_message


def test_failed_sign_ins_say_what_to_do(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE)
    request = google.begin_sign_in(state="state-1")
    with pytest.raises(SignInFailed) as raised:
        google.complete_sign_in(flow=request.flow, params={"error": "admin_policy_enforced", "state": "state-1"})
    assert not isinstance(raised.value, SignInCancelled)
    assert "administrator" in raised.value.user_message

    redirect = sign_in(sandbox, request.url, ALICE, PASSWORD)
    assert isinstance(redirect, Redirect)
    google.complete_sign_in(flow=request.flow, params=redirect.query)
    with pytest.raises(SignInFailed) as raised:  # a code works once
        google.complete_sign_in(flow=request.flow, params=redirect.query)
    assert "invalid_grant" in raised.value.detail and "connect again" in raised.value.user_message


def test_a_permission_left_unticked_fails_the_sign_in(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE)
    request = google.begin_sign_in(state="state-1")
    redirect = sign_in(sandbox, request.url, ALICE, PASSWORD)
    assert isinstance(redirect, Redirect)
    # As if the consent screen had offered one more permission and the user had unticked it.
    asked = {**request.flow, "scopes": [*request.flow["scopes"], "https://www.googleapis.com/auth/calendar"]}
    with pytest.raises(SignInFailed) as raised:
        google.complete_sign_in(flow=asked, params=redirect.query)
    assert "auth/calendar" in raised.value.detail and "leave all of them ticked" in raised.value.user_message


# -- identity ----------------------------------------------------------------------------

def test_identify_a_user(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    identity = google.identify(grant)
    assert identity.address == ALICE
    assert identity.kind is MailboxKind.USER
    assert identity.display_name == "Alice Gardner"
    assert identity.provider_account_id and identity.provider_account_id != ALICE  # Google's stable id
    assert identity.aliases == ()


def test_an_alias_signs_in_its_owner_and_shows_as_such(sandbox: SandboxProcess, google: GoogleProvider) -> None:
    create_account(sandbox, ALICE)
    create_account(sandbox, "sales@greenleaf-landscaping.com", kind="alias", alias_of=ALICE)

    identity = google.identify(connect(sandbox, google, "sales@greenleaf-landscaping.com"))

    # The caller compares with the address typed: it differs and is one of the owner's aliases.
    assert identity.address == ALICE
    assert identity.aliases == ("sales@greenleaf-landscaping.com",)


# -- the grant's life ----------------------------------------------------------------------

def test_refresh_renews_access_and_keeps_the_refresh_token(sandbox: SandboxProcess, google: GoogleProvider,
                                                           grant: Grant) -> None:
    refreshed = google.refresh(grant)
    assert refreshed.access_token != grant.access_token
    assert refreshed.data["refresh_token"] == grant.data["refresh_token"]
    assert refreshed.expires_at >= grant.expires_at and refreshed.scopes == grant.scopes
    assert google.identify(refreshed).address == ALICE


def test_invalid_grant_on_refresh_is_auth_revoked(sandbox: SandboxProcess, google: GoogleProvider,
                                                  grant: Grant) -> None:
    fault(sandbox, kind="invalid_grant", account=ALICE)
    with pytest.raises(AuthRevoked) as raised:
        google.refresh(grant)
    assert raised.value.permanent and "sign in again" in raised.value.user_message
    with pytest.raises(AuthRevoked):
        google.refresh(grant)


def test_revoke_ends_the_grant(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    google.revoke(grant)

    revokes = [e for e in sandbox.control("GET", "/requests")["requests"] if e["operation"] == "google.revoke"]
    assert [(e["method"], e["status"], e["query"]) for e in revokes] == [("POST", 200, "")]  # token not in the URL
    with pytest.raises(AuthRevoked):
        google.refresh(grant)
    # The API refuses the old access token; the client's own refresh then fails for good.
    with pytest.raises(AuthRevoked):
        google.list_folder(grant, "INBOX")
    google.revoke(grant)  # already revoked: nothing to do, no error


# -- errors ----------------------------------------------------------------------------------

def test_429_is_throttled_with_its_retry_after(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    fault(sandbox, kind="status", status=429, retry_after=7, path="/messages$")
    with pytest.raises(Throttled) as raised:
        google.list_folder(grant, "INBOX")
    assert raised.value.retry_after == 7 and not raised.value.permanent
    assert google.list_folder(grant, "INBOX").messages == ()  # one failed call, not retried behind our back
    assert operations(sandbox)["gmail.messages.list"] == 1


def test_the_sandbox_rate_limit_is_throttled(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    with pytest.raises(Throttled) as raised, google.api(grant) as gmail:
        for _ in range(10):  # 50 quota units each against 250 a second
            gmail.users().messages().batchModify(userId="me", body={"ids": ["0"], "addLabelIds": ["STARRED"]}
                                                 ).execute()
    assert raised.value.retry_after == 1


@pytest.mark.parametrize("reason", ["userRateLimitExceeded", "rateLimitExceeded"])
def test_the_403_form_of_the_rate_limit_is_throttled_too(reason: str, sandbox: SandboxProcess,
                                                         google: GoogleProvider, grant: Grant) -> None:
    # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
    fault(sandbox, kind="status", status=403, reason=reason, path="/messages$")
    with pytest.raises(Throttled) as raised:
        google.list_folder(grant, "INBOX")
    assert raised.value.retry_after is None  # no Retry-After on this form: the caller backs off
    assert not raised.value.permanent


def test_the_sandbox_rate_limit_in_its_403_form_is_throttled(sandbox: SandboxProcess, google: GoogleProvider,
                                                             grant: Grant) -> None:
    sandbox.control("POST", "/limits", json={"enabled": True, "gmail_rate_limit_status": 403})
    with pytest.raises(Throttled), google.api(grant) as gmail:
        for _ in range(10):
            gmail.users().messages().batchModify(userId="me", body={"ids": ["0"], "addLabelIds": ["STARRED"]}
                                                 ).execute()
    answers = [e["status"] for e in sandbox.control("GET", "/requests")["requests"]
               if e["operation"] == "gmail.messages.batchModify"]
    assert answers[-1] == 403 and answers[:-1] == [204] * 5


def test_503_is_throttled_and_500_transient(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    fault(sandbox, kind="status", status=503, retry_after=6, path="/messages$")
    with pytest.raises(Throttled) as throttled:
        google.list_folder(grant, "INBOX")
    assert throttled.value.retry_after == 6

    fault(sandbox, kind="status", status=500, path="/messages$")
    with pytest.raises(TransientError) as transient:
        google.list_folder(grant, "INBOX")
    assert not isinstance(transient.value, Throttled)


def test_a_dropped_connection_is_transient(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    fault(sandbox, kind="drop", path="/messages$")
    with pytest.raises(TransientError):
        google.list_folder(grant, "INBOX")


def test_a_timeout_is_transient(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    impatient = GoogleProvider(dataclasses.replace(google.config, timeout=0.5))
    fault(sandbox, kind="delay", seconds=2, path="/messages$")
    with pytest.raises(TransientError):
        impatient.list_folder(grant, "INBOX")


# -- mail -------------------------------------------------------------------------------------

def test_ensure_folders_creates_the_labels_once(sandbox: SandboxProcess, google: GoogleProvider,
                                                grant: Grant) -> None:
    first = google.ensure_folders(grant, ("Aspire", "Processed"))
    second = google.ensure_folders(grant, ("Aspire", "Processed"))

    assert first == second and set(first) == {"Aspire", "Processed"}
    assert operations(sandbox)["gmail.labels.create"] == 2
    assert {"Aspire", "Processed"} <= set(labels_of(sandbox))


def test_ensure_folders_when_another_worker_wins_the_race(sandbox: SandboxProcess, google: GoogleProvider,
                                                         grant: Grant, monkeypatch: pytest.MonkeyPatch) -> None:
    listed_before = gmail_calls.label_ids_by_name

    def list_then_lose_the_race(client: Any) -> dict[str, str]:
        labels = listed_before(client)
        if "processed" not in labels:
            gmail_calls.create_label(client, "Processed")  # someone else, just after our look
        return labels

    monkeypatch.setattr(gmail_calls, "label_ids_by_name", list_then_lose_the_race)
    folders = google.ensure_folders(grant, ("Aspire", "Processed"))
    monkeypatch.undo()

    assert google.ensure_folders(grant, ("Aspire", "Processed")) == folders
    assert [e["status"] for e in sandbox.control("GET", "/requests")["requests"]
            if e["operation"] == "gmail.labels.create"] == [200, 200, 409]


def test_list_folder_pages_one_request_each(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    aspire = google.ensure_folders(grant, ("Aspire",))["Aspire"]
    put_ids = {put(sandbox, "Aspire", mime(f"Captured {n}")) for n in range(5)}
    put(sandbox, "INBOX", mime("Not for Aspire"))

    listed: list[str] = []
    page = google.list_folder(grant, aspire, page_size=2)
    pages = 1
    while True:
        listed += [ref.id for ref in page.messages]
        if page.next_page_token is None:
            break
        page = google.list_folder(grant, aspire, page_token=page.next_page_token, page_size=2)
        pages += 1

    assert pages == 3 and sorted(listed) == sorted(put_ids)
    assert operations(sandbox)["gmail.messages.list"] == 3


def test_a_deleted_label_is_not_found(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    with pytest.raises(NotFound):
        google.list_folder(grant, "Label_404")


def test_fetch_mime_returns_the_bytes_put(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    google.ensure_folders(grant, ("Aspire",))
    raw = mime("Mulch colour", body="Dark brown, please. Ünïcode too.")
    message_id = put(sandbox, "Aspire", raw)

    assert google.fetch_mime(grant, message_id) == raw
    with pytest.raises(NotFound):
        google.fetch_mime(grant, "0000000000000000")


def test_move_45_messages_in_one_request(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    folders = google.ensure_folders(grant, ("Aspire", "Processed"))
    ids = tuple(put(sandbox, "Aspire", mime(f"Captured {n}")) for n in range(45))

    results = google.move_messages(grant, ids, source_folder_id=folders["Aspire"],
                                   target_folder_id=folders["Processed"])

    assert results == dict.fromkeys(ids)
    assert operations(sandbox)["gmail.messages.batchModify"] == 1
    mailbox = labels_of(sandbox)
    assert mailbox["Aspire"] == set() and mailbox["Processed"] == set(ids)


def test_a_failed_move_reports_each_message(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    folders = google.ensure_folders(grant, ("Aspire", "Processed"))
    ids = tuple(put(sandbox, "Aspire", mime(f"Captured {n}")) for n in range(3))
    fault(sandbox, kind="status", status=503, retry_after=5, path="batchModify")

    results = google.move_messages(grant, ids, source_folder_id=folders["Aspire"],
                                   target_folder_id=folders["Processed"])

    assert set(results) == set(ids)
    assert all(isinstance(error, Throttled) and error.retry_after == 5 for error in results.values())
    assert labels_of(sandbox)["Aspire"] == set(ids)


def test_send_mime_lands_in_sent(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    sent_id = google.send_mime(grant, mime("Proposal 1042", sender=ALICE, to=CUSTOMER))
    assert sent_id in labels_of(sandbox)["SENT"]


@pytest.mark.parametrize(("photo_bytes", "uploaded"), [(500_000, False), (800_000, True), (6_000_000, True)])
def test_a_message_goes_as_an_upload_when_its_json_body_would_be_over_1_mb(
        photo_bytes: int, uploaded: bool, sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ALICE, CUSTOMER, "Site photos"
    message.set_content("Photos attached.")
    message.add_attachment(bytes(range(256)) * (photo_bytes // 256), maintype="image", subtype="jpeg",
                           filename="site.jpg")
    raw = bytes(message)

    sent_id = google.send_mime(grant, raw)

    assert sent_id in labels_of(sandbox)["SENT"]
    assert b"Photos attached." in google.fetch_mime(grant, sent_id)
    sends = [e for e in sandbox.control("GET", "/requests")["requests"] if e["operation"] == "gmail.messages.send"]
    assert [(e["path"].startswith("/upload/"), e["status"]) for e in sends] == [(uploaded, 200)]


def test_find_sent_finds_sent_mail_and_not_a_draft(sandbox: SandboxProcess, google: GoogleProvider,
                                                   grant: Grant) -> None:
    raw = mime("Estimate 88", sender=ALICE, to=CUSTOMER)
    message_id = email.message_from_bytes(raw)["Message-ID"]
    put(sandbox, "DRAFT", raw)
    assert google.find_sent(grant, message_id) is False
    google.send_mime(grant, raw)
    assert google.find_sent(grant, message_id) is True


def test_errors_are_provider_errors_only(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    fault(sandbox, kind="status", status=400, path="/profile$")
    with pytest.raises(ProviderError) as raised:
        google.identify(grant)
    # A request Google refused: waiting will not help, so it is permanent (and shown as failed).
    assert raised.value.permanent and not isinstance(raised.value, TransientError)


def test_an_expired_access_token_is_renewed_on_the_way(sandbox: SandboxProcess, google: GoogleProvider,
                                                       grant: Grant) -> None:
    expired = dataclasses.replace(grant, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert google.identify(expired).address == ALICE
    assert operations(sandbox)["google.token.refresh_token"] == 1

    fault(sandbox, kind="invalid_grant", account=ALICE)
    with pytest.raises(AuthRevoked):
        google.identify(expired)


def test_a_batch_goes_to_the_configured_host(sandbox: SandboxProcess, google: GoogleProvider, grant: Grant) -> None:
    ids = [put(sandbox, "INBOX", mime(f"Batch {n}")) for n in range(3)]
    results: dict[str, Any] = {}

    with google.api(grant) as gmail:
        batch = google.new_batch(gmail, callback=lambda key, response, error: results.update({key: error or response}))
        for message_id in [*ids, "0000000000000000"]:
            batch.add(gmail.users().messages().get(userId="me", id=message_id, format="minimal"), request_id=message_id)
        batch.execute()

    assert [results[message_id]["id"] for message_id in ids] == ids
    assert getattr(results["0000000000000000"], "status_code", None) == 404
    assert sandbox.control("GET", "/counters")["counters"][ALICE]["batch"] == 1


def test_the_calendar_client_reaches_the_configured_host(sandbox: SandboxProcess, google: GoogleProvider,
                                                         grant: Grant) -> None:
    sandbox.control("POST", f"/accounts/google/{ALICE}/events", json={
        "subject": "Spring cleanup walk-through", "start": "2026-05-04T09:00:00", "end": "2026-05-04T10:00:00",
        "time_zone": "America/Chicago"})
    with google.api(grant, "calendar") as calendar:
        events = calendar.events().list(calendarId="primary").execute()
    assert [event["summary"] for event in events["items"]] == ["Spring cleanup walk-through"]
