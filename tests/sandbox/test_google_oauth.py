"""Google sign-in against the sandbox with google-auth-oauthlib, google-auth and the API client."""

from __future__ import annotations

import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import id_token
from googleapiclient.errors import HttpError
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error

from sandbox.runner import SandboxProcess

from .google_support import (
    CALENDAR_SCOPES,
    CLIENT_ID,
    Redirect,
    browser,
    connect,
    create_account,
    new_flow,
    run,
    service,
    sign_in,
    token_request,
)

ALICE = "alice@greenleaf-landscaping.com"


@pytest.fixture
def alice_mailbox(sandbox: SandboxProcess) -> str:
    create_account(sandbox, ALICE, password="correct horse")
    return ALICE


def test_code_flow_with_pkce_gives_working_offline_credentials(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    flow = new_flow(sandbox)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge_method=S256" in url

    redirect = sign_in(sandbox, url, alice_mailbox, "correct horse")

    assert isinstance(redirect, Redirect)
    assert redirect.query["state"] == state
    assert redirect.query["scope"].split() == flow.oauth2session.scope
    flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))
    credentials = flow.credentials
    assert credentials.refresh_token and credentials.token and credentials.id_token
    assert credentials.expiry is not None
    profile = run(service(sandbox, credentials, "gmail").users().getProfile(userId="me"))
    assert profile["emailAddress"] == alice_mailbox


def test_id_token_verifies_against_the_sandbox_keys(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    credentials = connect(sandbox, alice_mailbox, password="correct horse")
    claims = id_token.verify_token(credentials.id_token, token_request(sandbox), audience=CLIENT_ID,
                                   certs_url=f"{sandbox.base_url}/oauth2/v3/certs")
    assert claims["email"] == alice_mailbox and claims["iss"] == "https://accounts.google.com"
    with browser(sandbox) as session:
        userinfo = session.get(f"{sandbox.base_url}/oauth2/v3/userinfo",
                               headers={"Authorization": f"Bearer {credentials.token}"}).json()
    assert userinfo["email"] == alice_mailbox and userinfo["sub"] == claims["sub"]


def test_api_calls_need_a_scope_for_that_api(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    credentials = connect(sandbox, alice_mailbox, password="correct horse", scopes=CALENDAR_SCOPES)
    run(service(sandbox, credentials, "calendar").events().list(calendarId="primary"))
    with pytest.raises(HttpError) as raised:
        service(sandbox, credentials, "gmail").users().getProfile(userId="me").execute()
    assert raised.value.status_code == 403
    assert raised.value.error_details[0]["reason"] == "insufficientPermissions"


def test_online_access_gets_no_refresh_token(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    create_account(sandbox, "bob@greenleaf-landscaping.com")
    credentials = connect(sandbox, "bob@greenleaf-landscaping.com", offline=False)
    assert credentials.token and credentials.refresh_token is None


def test_refresh_token_comes_with_first_or_forced_consent(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    assert connect(sandbox, alice_mailbox, password="correct horse", prompt=None).refresh_token
    assert connect(sandbox, alice_mailbox, password="correct horse", prompt=None).refresh_token is None
    assert connect(sandbox, alice_mailbox, password="correct horse", prompt="consent").refresh_token


def test_mfa_account_needs_the_one_time_code(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "carol@greenleaf-landscaping.com", mfa=True, mfa_code="424242")
    flow = new_flow(sandbox)
    url, state = flow.authorization_url(access_type="offline")

    wrong = sign_in(sandbox, url, "carol@greenleaf-landscaping.com", mfa_code="000000")
    assert not isinstance(wrong, Redirect)
    assert "Wrong code" in wrong.text

    redirect = sign_in(sandbox, url, "carol@greenleaf-landscaping.com", mfa_code="424242")
    assert isinstance(redirect, Redirect) and redirect.query["state"] == state
    flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))
    assert flow.credentials.refresh_token


def test_wrong_password_shows_the_sign_in_page_again(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    url, _ = new_flow(sandbox).authorization_url()
    page = sign_in(sandbox, url, alice_mailbox, "guess")
    assert not isinstance(page, Redirect)
    assert "Wrong email or password" in page.text and 'name="password"' in page.text


def test_cancel_returns_access_denied_with_state(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    url, state = new_flow(sandbox).authorization_url()
    redirect = sign_in(sandbox, url, alice_mailbox, cancel=True)
    assert isinstance(redirect, Redirect)
    assert redirect.query == {"error": "access_denied", "state": state}


def test_groups_cannot_sign_in(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "office@greenleaf-landscaping.com", kind="distribution_list")
    url, _ = new_flow(sandbox).authorization_url()
    page = sign_in(sandbox, url, "office@greenleaf-landscaping.com")
    assert not isinstance(page, Redirect)
    assert "Google Group" in page.text


def test_alias_signs_in_its_owner(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    create_account(sandbox, "sales@greenleaf-landscaping.com", kind="alias", alias_of=alice_mailbox)
    credentials = connect(sandbox, "sales@greenleaf-landscaping.com")
    gmail = service(sandbox, credentials, "gmail")
    assert run(gmail.users().getProfile(userId="me"))["emailAddress"] == alice_mailbox
    send_as = run(gmail.users().settings().sendAs().list(userId="me"))["sendAs"]
    assert {(s["sendAsEmail"], s.get("isPrimary", False)) for s in send_as} == {
        (alice_mailbox, True), ("sales@greenleaf-landscaping.com", False)}


def test_code_needs_the_right_verifier_and_works_once(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    flow = new_flow(sandbox)
    url, _ = flow.authorization_url(access_type="offline")
    redirect = sign_in(sandbox, url, alice_mailbox, "correct horse")
    assert isinstance(redirect, Redirect)
    right_verifier = flow.code_verifier

    flow.code_verifier = "x" * 64
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))

    # The failed attempt used the code up, as Google does: the right verifier is now too late.
    flow.code_verifier = right_verifier
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))


def test_code_reuse_is_refused(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    flow = new_flow(sandbox)
    url, _ = flow.authorization_url(access_type="offline")
    redirect = sign_in(sandbox, url, alice_mailbox, "correct horse")
    assert isinstance(redirect, Redirect)
    flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))


def test_wrong_client_secret_is_invalid_client(sandbox: SandboxProcess, alice_mailbox: str) -> None:
    flow = new_flow(sandbox)
    url, _ = flow.authorization_url()
    redirect = sign_in(sandbox, url, alice_mailbox, "correct horse")
    assert isinstance(redirect, Redirect)
    with pytest.raises(OAuth2Error) as raised:
        flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path),
                         client_secret="not-the-secret")
    assert raised.value.error == "invalid_client"


def test_refresh_keeps_the_refresh_token_and_renews_access(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "dave@greenleaf-landscaping.com")
    credentials = connect(sandbox, "dave@greenleaf-landscaping.com")
    old_access, refresh = credentials.token, credentials.refresh_token

    credentials.refresh(token_request(sandbox))

    assert credentials.token != old_access
    assert credentials.refresh_token == refresh
    assert run(service(sandbox, credentials, "gmail").users().getProfile(userId="me"))["emailAddress"] == (
        "dave@greenleaf-landscaping.com")


def test_injected_invalid_grant_fails_the_next_refresh_for_good(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "erin@greenleaf-landscaping.com")
    credentials = connect(sandbox, "erin@greenleaf-landscaping.com")
    sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "erin@greenleaf-landscaping.com"})

    with pytest.raises(RefreshError) as raised:
        credentials.refresh(token_request(sandbox))
    assert "invalid_grant" in str(raised.value)
    with pytest.raises(RefreshError):
        credentials.refresh(token_request(sandbox))


def test_revoke_ends_the_grant(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "fay@greenleaf-landscaping.com")
    credentials = connect(sandbox, "fay@greenleaf-landscaping.com")
    with browser(sandbox) as session:
        revoked = session.post(f"{sandbox.base_url}/revoke", params={"token": credentials.token},
                               headers={"content-type": "application/x-www-form-urlencoded"})
        assert revoked.status_code == 200
        again = session.post(f"{sandbox.base_url}/revoke", data={"token": credentials.refresh_token})
        assert again.status_code == 400 and again.json()["error"] == "invalid_token"

    # The API answers 401; the client then tries its refresh token, which died with the grant.
    with pytest.raises(RefreshError) as raised:
        service(sandbox, credentials, "gmail").users().getProfile(userId="me").execute()
    assert "invalid_grant" in str(raised.value)
