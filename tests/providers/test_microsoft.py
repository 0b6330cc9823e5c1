"""The Microsoft 365 adapter against the running sandbox: sign-in through its pages, then Graph."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from providers import (
    AccessTokenRejected,
    AuthRevoked,
    Conflict,
    Grant,
    MailboxKind,
    NotFound,
    ProviderError,
    SendOutcomeUnknown,
    SignInCancelled,
    SignInFailed,
    SyncStateExpired,
    Throttled,
    TransientError,
)
from providers.microsoft import MicrosoftConfig, MicrosoftProvider
from sandbox.runner import SandboxProcess

# The adapter keeps msal's default response_mode=query on purpose (see providers/microsoft/auth.py).
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

REDIRECT_URI = "http://localhost:8000/connect/microsoft/callback"
ANA = "ana@greenleaf.example"


def config_for(sandbox: SandboxProcess, *, timeout: float = 10) -> MicrosoftConfig:
    return MicrosoftConfig(
        client_id="aspire-sync-test",
        client_secret="sandbox-secret",
        redirect_uri=REDIRECT_URI,
        authority=f"{sandbox.base_url}/organizations",
        graph_url=f"{sandbox.base_url}/v1.0",
        ca_bundle=str(sandbox.ca_path),
        timeout=timeout,
    )


@pytest.fixture
def provider(sandbox: SandboxProcess) -> Iterator[MicrosoftProvider]:
    adapter = MicrosoftProvider(config_for(sandbox))
    yield adapter
    adapter.close()


def create_account(sandbox: SandboxProcess, email: str, **spec: object) -> None:
    sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": email, **spec})


class Browser:
    """The user's browser on the sandbox's sign-in pages."""

    def __init__(self, sandbox: SandboxProcess, url: str) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(sandbox.ca_path)
        self.action = url.split("?")[0]
        self.page = self.session.get(url, timeout=10)
        self.page.raise_for_status()

    def submit(self, **fields: str) -> requests.Response:
        flow = re.search(r"name='flow' value='([^']+)'", self.page.text)
        assert flow, self.page.text
        response = self.session.post(self.action, data={"flow": flow.group(1), **fields}, allow_redirects=False,
                                     timeout=10)
        if response.status_code == 200:
            self.page = response
        return response

    def cancel(self) -> requests.Response:
        href = re.search(r"href='([^']*cancel\?flow=[^']+)'", self.page.text)
        assert href
        # Resolved against the page's URL, as a browser does.
        return self.session.get(urljoin(self.page.url, href.group(1)), allow_redirects=False, timeout=10)

    @staticmethod
    def callback_params(response: requests.Response) -> dict[str, str]:
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def sign_in(sandbox: SandboxProcess, provider: MicrosoftProvider, email: str, *, mfa_code: str | None = None) -> Grant:
    auth = provider.begin_sign_in(state="state-123", login_hint=email)
    browser = Browser(sandbox, auth.url)
    response = browser.submit(login=email, passwd="password")
    if mfa_code is not None:
        assert "name='otc'" in response.text
        response = browser.submit(otc=mfa_code)
    # The flow is kept server-side between the two halves, serialised.
    flow = json.loads(json.dumps(auth.flow))
    return provider.complete_sign_in(flow=flow, params=browser.callback_params(response))


@pytest.fixture
def grant(sandbox: SandboxProcess, provider: MicrosoftProvider) -> Grant:
    create_account(sandbox, ANA, display_name="Ana Lopez")
    return sign_in(sandbox, provider, ANA)


def graph_requests(sandbox: SandboxProcess, since: float = 0) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = sandbox.control("GET", f"/requests?since={since}")["requests"]
    return [e for e in entries if str(e["path"]).startswith("/v1.0")]


def identity_requests(sandbox: SandboxProcess, since: float) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = sandbox.control("GET", f"/requests?since={since}")["requests"]
    return [e for e in entries if e["provider"] == "microsoft" and not str(e["path"]).startswith("/v1.0")]


def now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def mime(subject: str, body: str = "Hello", sender: str = "dana@example.com", to: str = ANA) -> str:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    local_part = re.sub(r"\W", "", subject)
    message["Message-ID"] = f"<{local_part}@example.com>"
    message.set_content(body)
    return message.as_string()


def put_message(sandbox: SandboxProcess, folder: str, raw: str, email: str = ANA) -> dict[str, str]:
    result: dict[str, str] = sandbox.control("POST", f"/accounts/microsoft/{email}/messages",
                                             json={"folder": folder, "raw": raw})
    return result


def folder_contents(sandbox: SandboxProcess, email: str = ANA) -> dict[str, list[dict[str, str]]]:
    folders = sandbox.control("GET", f"/accounts/microsoft/{email}/mailbox")["folders"]
    return {folder["name"]: folder["messages"] for folder in folders}


# -- sign-in, identity and grants ------------------------------------------------------------


def test_begin_sign_in_asks_for_the_mail_and_calendar_scopes_with_pkce(provider: MicrosoftProvider) -> None:
    auth = provider.begin_sign_in(state="state-123", login_hint="ana@greenleaf.example")
    query = parse_qs(urlsplit(auth.url).query)
    assert urlsplit(auth.url).path == "/organizations/oauth2/v2.0/authorize"
    assert query["state"] == ["state-123"]
    assert query["login_hint"] == ["ana@greenleaf.example"]
    assert query["prompt"] == ["select_account"]
    assert query["code_challenge_method"] == ["S256"]
    scopes = set(query["scope"][0].split())
    assert {"https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send",
            "https://graph.microsoft.com/Calendars.ReadWrite", "offline_access"} <= scopes
    # The PKCE verifier stays in the flow, server-side; the flow survives JSON.
    assert auth.flow["code_verifier"] not in auth.url
    assert json.loads(json.dumps(auth.flow)) == auth.flow


def test_sign_in_gives_a_grant_that_identifies_the_user(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                        grant: Grant) -> None:
    assert grant.access_token
    assert not grant.expires_within(3000) and grant.expires_within(3700)
    assert grant.access_token not in repr(grant)
    identity = provider.identify(grant)
    assert identity.address == ANA
    assert identity.display_name == "Ana Lopez"
    assert identity.kind == MailboxKind.USER
    assert identity.provider_account_id


def test_sign_in_with_mfa(sandbox: SandboxProcess, provider: MicrosoftProvider) -> None:
    create_account(sandbox, "mfa@greenleaf.example", mfa=True, mfa_code="424242")
    grant = sign_in(sandbox, provider, "mfa@greenleaf.example", mfa_code="424242")
    assert provider.identify(grant).address == "mfa@greenleaf.example"


@pytest.mark.parametrize(("kind", "expected"), [("shared", MailboxKind.SHARED), ("room", MailboxKind.ROOM)])
def test_identify_tells_shared_and_room_mailboxes_apart(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                        kind: str, expected: MailboxKind) -> None:
    create_account(sandbox, "office@greenleaf.example", kind=kind)
    identity = provider.identify(sign_in(sandbox, provider, "office@greenleaf.example"))
    assert identity.kind == expected


def test_an_alias_is_identified_as_its_primary_mailbox(sandbox: SandboxProcess, provider: MicrosoftProvider) -> None:
    create_account(sandbox, ANA)
    create_account(sandbox, "sales@greenleaf.example", kind="alias", alias_of=ANA)
    identity = provider.identify(sign_in(sandbox, provider, "sales@greenleaf.example"))
    # The caller compares this with the address the user typed, and refuses the alias; the
    # mailbox's proxyAddresses name the alias, so the caller can say so.
    assert identity.address == ANA
    assert identity.kind == MailboxKind.USER
    assert identity.aliases == ("sales@greenleaf.example",)


def test_cancelling_the_sign_in(sandbox: SandboxProcess, provider: MicrosoftProvider) -> None:
    auth = provider.begin_sign_in(state="state-123")
    browser = Browser(sandbox, auth.url)
    params = browser.callback_params(browser.cancel())
    with pytest.raises(SignInCancelled) as cancelled:
        provider.complete_sign_in(flow=auth.flow, params=params)
    assert cancelled.value.permanent and "cancelled" in cancelled.value.user_message


def test_a_refused_sign_in_says_why(sandbox: SandboxProcess, provider: MicrosoftProvider) -> None:
    create_account(sandbox, "crews@greenleaf.example", kind="distribution_list")
    auth = provider.begin_sign_in(state="state-123")
    browser = Browser(sandbox, auth.url)
    params = browser.callback_params(browser.submit(login="crews@greenleaf.example", passwd="password"))
    with pytest.raises(SignInFailed) as refused:
        provider.complete_sign_in(flow=auth.flow, params=params)
    assert not isinstance(refused.value, SignInCancelled)
    assert refused.value.user_message.startswith("Microsoft 365 has no user account with that address")
    assert "AADSTS50034" in refused.value.detail


@pytest.mark.parametrize(("description", "says"), [
    ("AADSTS50105: The signed in user 'x' is not assigned to a role for the application.", "assign it to you"),
    ("AADSTS53003: Access has been blocked by Conditional Access policies.", "Conditional Access"),
    ("AADSTS50057: The user account is disabled.", "disabled"),
    ("AADSTS65004: User declined to consent to access the app.", "cancelled"),
    ("", "cancelled"),
])
def test_access_denied_is_cancelled_only_when_the_user_backed_out(
        sandbox: SandboxProcess, provider: MicrosoftProvider, description: str, says: str) -> None:
    """Microsoft sends ``access_denied`` for refusals with a reason too; only the user's own
    Cancel (no code, or AADSTS65004) reads as cancelled."""
    auth = provider.begin_sign_in(state="state-123")
    params = {"error": "access_denied", "state": "state-123", **({"error_description": description} if description
                                                                  else {"error_subcode": "cancel"})}
    with pytest.raises(SignInFailed) as raised:
        provider.complete_sign_in(flow=auth.flow, params=params)
    assert says in raised.value.user_message
    assert isinstance(raised.value, SignInCancelled) == (says == "cancelled")


def test_a_callback_for_another_sign_in_fails(sandbox: SandboxProcess, provider: MicrosoftProvider) -> None:
    create_account(sandbox, ANA)
    auth = provider.begin_sign_in(state="state-123")
    browser = Browser(sandbox, auth.url)
    params = browser.callback_params(browser.submit(login=ANA, passwd="password"))
    with pytest.raises(SignInFailed):
        provider.complete_sign_in(flow={**auth.flow, "state": "another"}, params=params)


def test_refresh_rotates_the_refresh_token(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                           grant: Grant) -> None:
    renewed = provider.refresh(grant)
    assert renewed.access_token != grant.access_token
    assert renewed.data["token_cache"] != grant.data["token_cache"]
    assert provider.identify(renewed).address == ANA
    # The identity platform refuses the spent refresh token from now on.
    with pytest.raises(AuthRevoked):
        provider.refresh(grant)
    assert provider.refresh(renewed).access_token


def test_an_invalid_grant_means_sign_in_again(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                              grant: Grant) -> None:
    sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": ANA})
    with pytest.raises(AuthRevoked) as revoked:
        provider.refresh(grant)
    assert revoked.value.permanent
    assert "AADSTS50173" in revoked.value.detail


def test_revoke_forgets_the_grant_without_calling_microsoft(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                            grant: Grant) -> None:
    since = now()
    provider.revoke(grant)
    assert sandbox.control("GET", f"/requests?since={since}")["requests"] == []
    with pytest.raises(AuthRevoked):
        provider.refresh(grant)
    # Best effort: a grant already forgotten, or one that holds nothing, is not an error.
    provider.revoke(grant)
    provider.revoke(Grant(data={}, access_token="", expires_at=grant.expires_at))


# -- Graph errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), [
    (404, NotFound), (409, Conflict), (410, SyncStateExpired), (412, Conflict), (500, TransientError),
    (400, ProviderError),
])
def test_graph_errors_map_to_provider_errors(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant,
                                             status: int, error: type[ProviderError]) -> None:
    sandbox.control("POST", "/faults", json={"kind": "status", "status": status, "path": "/messages$"})
    with pytest.raises(error) as raised:
        provider.list_folder(grant, "inbox")
    assert type(raised.value) is error


def test_throttling_carries_retry_after(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 7, "path": "/messages$"})
    with pytest.raises(Throttled) as throttled:
        provider.list_folder(grant, "inbox")
    assert throttled.value.retry_after == 7
    assert not throttled.value.permanent


def test_service_unavailable_is_throttling_only_with_a_retry_after(sandbox: SandboxProcess,
                                                                   provider: MicrosoftProvider, grant: Grant) -> None:
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 503, "retry_after": 4, "path": "/messages$"})
    with pytest.raises(Throttled) as throttled:
        provider.list_folder(grant, "inbox")
    assert throttled.value.retry_after == 4
    # Without one, the caller backs off on its own rather than wait a fixed default.
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 503, "path": "/messages$"})
    with pytest.raises(TransientError) as transient:
        provider.list_folder(grant, "inbox")
    assert not isinstance(transient.value, Throttled) and transient.value.retry_after is None


def test_a_dropped_connection_is_transient(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    message = put_message(sandbox, "Inbox", mime("Dropped"))
    sandbox.control("POST", "/faults", json={"kind": "drop", "path": "/messages$"})
    with pytest.raises(TransientError):
        provider.list_folder(grant, "inbox")
    sandbox.control("POST", "/faults", json={"kind": "drop", "path": r"/\$value$"})
    with pytest.raises(TransientError):
        provider.fetch_mime(grant, message["immutable_id"])
    # The session recovers: the next call works.
    assert provider.fetch_mime(grant, message["immutable_id"]) == mime("Dropped").encode()


def test_a_slow_answer_times_out_as_transient(sandbox: SandboxProcess, grant: Grant) -> None:
    impatient = MicrosoftProvider(config_for(sandbox, timeout=0.5))
    sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 1.5, "path": "/messages$"})
    sandbox.control("POST", "/faults", json={"kind": "delay", "seconds": 1.5, "path": "/token$"})
    try:
        with pytest.raises(TransientError):
            impatient.list_folder(grant, "inbox")
        # msal's calls go through the same session, so they time out too.
        with pytest.raises(TransientError):
            impatient.refresh(grant)
    finally:
        impatient.close()


def test_a_refused_access_token_asks_for_a_refresh(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                   grant: Grant) -> None:
    stale = Grant(data=grant.data, access_token="not-a-token", expires_at=grant.expires_at)
    with pytest.raises(AccessTokenRejected) as rejected:
        provider.identify(stale)
    assert isinstance(rejected.value, TransientError)
    assert provider.identify(provider.refresh(stale)).address == ANA


# -- mail --------------------------------------------------------------------------------------


def test_ensure_folders_creates_once(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    folders = provider.ensure_folders(grant, ("Aspire", "Processed"))
    assert set(folders) == {"Aspire", "Processed"}
    assert {"Aspire", "Processed"} <= set(folder_contents(sandbox))

    since = now()
    assert provider.ensure_folders(grant, ("Aspire", "Processed")) == folders
    assert [e for e in graph_requests(sandbox, since) if e["method"] == "POST"] == []
    # Outlook compares folder names case-insensitively, and so do we.
    assert provider.ensure_folders(grant, ("ASPIRE",)) == {"ASPIRE": folders["Aspire"]}


def test_list_folder_pages_with_one_request_per_page(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                     grant: Grant) -> None:
    aspire = provider.ensure_folders(grant, ("Aspire",))["Aspire"]
    put = {put_message(sandbox, "Aspire", mime(f"Message {n}"))["internet_message_id"] for n in range(7)}

    seen: list[str] = []
    token: str | None = None
    calls = 0
    while True:
        since = now()
        page = provider.list_folder(grant, aspire, page_token=token, page_size=3)
        calls += 1
        assert len(graph_requests(sandbox, since)) == 1
        seen.extend(ref.internet_message_id for ref in page.messages)
        token = page.next_page_token
        if token is None:
            break
    assert calls == 3
    assert sorted(seen) == sorted(put)


def test_fetch_mime_returns_the_stored_bytes(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                             grant: Grant) -> None:
    provider.ensure_folders(grant, ("Aspire",))
    raw = mime("Quote for spring mulch", body="Line of text\n" * 50_000)  # about 650 kB: several chunks
    put_message(sandbox, "Aspire", raw)
    [ref] = provider.list_folder(grant, provider.ensure_folders(grant, ("Aspire",))["Aspire"]).messages
    assert provider.fetch_mime(grant, ref.id) == raw.encode()
    with pytest.raises(NotFound):
        provider.fetch_mime(grant, "AAkALgdoesnotexist")


def test_move_45_messages_in_batches_the_mailbox_takes_without_throttling(
        sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    folders = provider.ensure_folders(grant, ("Aspire", "Processed"))
    for n in range(45):
        put_message(sandbox, "Aspire", mime(f"Capture {n}"))
    refs = provider.list_folder(grant, folders["Aspire"], page_size=50).messages
    ids = tuple(ref.id for ref in refs)
    assert len(ids) == 45

    since = now()
    results = provider.move_messages(grant, ids, source_folder_id=folders["Aspire"],
                                     target_folder_id=folders["Processed"])
    # Every step of a batch counts against the mailbox's 4 concurrent requests: 15 batches of 3,
    # and not one step throttled.
    assert results == dict.fromkeys(ids)
    assert [e["path"] for e in graph_requests(sandbox, since)] == ["/v1.0/$batch"] * 15
    contents = folder_contents(sandbox)
    assert contents["Aspire"] == []
    assert {m["immutable_id"] for m in contents["Processed"]} == set(ids)

    # Immutable ids: moving again, or a message that has gone, is not an error.
    again = provider.move_messages(grant, (ids[0], "AAkALgdoesnotexist"), source_folder_id=folders["Aspire"],
                                   target_folder_id=folders["Processed"])
    assert again == {ids[0]: None, "AAkALgdoesnotexist": None}


def test_moving_to_a_deleted_folder_is_not_taken_for_done(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                          grant: Grant) -> None:
    folders = provider.ensure_folders(grant, ("Aspire",))
    message = put_message(sandbox, "Aspire", mime("Capture"))
    with pytest.raises(NotFound):
        provider.move_messages(grant, (message["immutable_id"],), source_folder_id=folders["Aspire"],
                               target_folder_id="AAMkADFlddeletedfolder")
    assert len(folder_contents(sandbox)["Aspire"]) == 1


def test_a_throttled_move_step_is_reported_for_its_message(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                           grant: Grant) -> None:
    folders = provider.ensure_folders(grant, ("Aspire", "Processed"))
    ids = tuple(put_message(sandbox, "Aspire", mime(f"Capture {n}"))["immutable_id"] for n in range(3))
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 5, "path": "/move$"})
    results = provider.move_messages(grant, ids, source_folder_id=folders["Aspire"],
                                     target_folder_id=folders["Processed"])
    throttled = results[ids[0]]
    assert isinstance(throttled, Throttled) and throttled.retry_after == 5
    assert results[ids[1]] is None and results[ids[2]] is None
    assert [m["immutable_id"] for m in folder_contents(sandbox)["Aspire"]] == [ids[0]]


def test_a_throttled_batch_raises(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    folders = provider.ensure_folders(grant, ("Aspire", "Processed"))
    message = put_message(sandbox, "Aspire", mime("Capture"))
    sandbox.control("POST", "/faults", json={"kind": "status", "status": 429, "retry_after": 2, "path": "batch"})
    with pytest.raises(Throttled) as throttled:
        provider.move_messages(grant, (message["immutable_id"],), source_folder_id=folders["Aspire"],
                               target_folder_id=folders["Processed"])
    assert throttled.value.retry_after == 2


def test_find_sent_finds_sent_mail_and_not_a_draft(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                   grant: Grant) -> None:
    raw = mime("Your estimate", sender=ANA, to="dana@example.com")
    # A draft of the message (a send that failed before Graph took it leaves one) is not sent mail.
    draft = requests.post(f"{sandbox.base_url}/v1.0/me/messages", data=base64.b64encode(raw.encode()),
                          headers={"Authorization": f"Bearer {grant.access_token}", "Content-Type": "text/plain"},
                          verify=str(sandbox.ca_path), timeout=10)
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    assert provider.find_sent(grant, "<Yourestimate@example.com>") is False
    provider.send_mime(grant, raw.encode())
    assert provider.find_sent(grant, "<Yourestimate@example.com>") is True
    assert provider.find_sent(grant, "<someone-else's@example.com>") is False


def test_send_mime_lands_in_sent_items(sandbox: SandboxProcess, provider: MicrosoftProvider, grant: Grant) -> None:
    raw = mime("Your proposal", body="Please find the proposal.", sender=ANA, to="dana@example.com")
    assert provider.send_mime(grant, raw.encode()) == ""
    [sent] = folder_contents(sandbox)["Sent Items"]
    assert sent["subject"] == "Your proposal"
    assert sent["internet_message_id"] == "<Yourproposal@example.com>"


def test_a_send_that_may_have_gone_out_is_not_transient(sandbox: SandboxProcess, provider: MicrosoftProvider,
                                                        grant: Grant) -> None:
    sandbox.control("POST", "/faults", json={"kind": "drop", "path": "sendMail"})
    with pytest.raises(SendOutcomeUnknown) as unknown:
        provider.send_mime(grant, mime("Your invoice", sender=ANA, to="dana@example.com").encode())
    assert not isinstance(unknown.value, TransientError)
