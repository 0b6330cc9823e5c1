"""Sign-in and tokens against the Microsoft identity emulation, through msal."""

from __future__ import annotations

import base64
import json
import re

from sandbox.runner import SandboxProcess

from .microsoft_client import (
    CLIENT_ID,
    REDIRECT_URI,
    SCOPES,
    Graph,
    SignIn,
    ca_session,
    create_account,
    msal_app,
    sign_in,
)


def claims_of(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_discovery_points_at_the_sandbox(sandbox: SandboxProcess) -> None:
    config = ca_session(sandbox).get(f"{sandbox.base_url}/organizations/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{sandbox.base_url}/organizations/oauth2/v2.0/token"
    assert config["authorization_endpoint"].startswith(sandbox.base_url)
    assert config["issuer"] == f"{sandbox.base_url}/{{tenantid}}/v2.0"


def test_auth_code_flow_with_pkce(sandbox: SandboxProcess) -> None:
    account = create_account(sandbox, "ana@acme.test", display_name="Ana Lopez", password="s3cret")
    result = sign_in(sandbox, "ana@acme.test", "s3cret")

    assert result["refresh_token"]
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == "ana@acme.test"
    assert claims["aud"] == CLIENT_ID
    assert claims["tid"] == account["tenant_id"]
    assert claims["iss"] == f"{sandbox.base_url}/{account['tenant_id']}/v2.0"
    me = Graph(sandbox, result["access_token"]).ok("GET", "me")
    assert me["mail"] == "ana@acme.test"
    assert me["displayName"] == "Ana Lopez"


def test_mfa_asks_for_a_code_and_lets_the_user_retry(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "mfa@acme.test", mfa=True, mfa_code="424242")
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session))

    code_page = flow.password("mfa@acme.test")
    assert code_page.status_code == 200 and "name='otc'" in code_page.text
    wrong = flow.code("000000")
    assert wrong.status_code == 200 and "incorrect" in wrong.text
    result = flow.redeem(flow.code("424242"))
    assert result["id_token_claims"]["preferred_username"] == "mfa@acme.test"


def test_wrong_password_stays_on_the_sign_in_page(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    response = flow.password("ana@acme.test", "wrong")
    assert response.status_code == 200
    assert "AADSTS50126" in response.text


def test_a_distribution_list_cannot_sign_in(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "sales@acme.test", kind="distribution_list")
    session = ca_session(sandbox)
    app = msal_app(sandbox, session)
    flow = SignIn(sandbox, session, app)
    # The sign-in ends and the application hears why, without the address.
    params = flow.redirect_params(flow.password("sales@acme.test"))
    assert params["error"] == "access_denied" and params["state"] == flow.flow["state"]
    assert params["error_description"].startswith("AADSTS50034: The user account {EmailHidden} does not exist")
    assert "sales@" not in params["error_description"]
    result = app.acquire_token_by_auth_code_flow(flow.flow, params)
    assert result["error"] == "access_denied" and "AADSTS50034" in result["error_description"]


def test_an_unknown_address_can_be_corrected_on_the_page(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    response = flow.password("anna@acme.test")
    assert response.status_code == 200 and "AADSTS50034" in response.text
    assert flow.redeem(flow.password("ana@acme.test"))["access_token"]


def test_an_alias_signs_in_as_its_mailbox(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    create_account(sandbox, "ana.lopez@acme.test", kind="alias", alias_of="ana@acme.test")
    result = sign_in(sandbox, "ana.lopez@acme.test")
    assert Graph(sandbox, result["access_token"]).ok("GET", "me")["mail"] == "ana@acme.test"


def test_mailbox_settings_tell_a_shared_mailbox_apart(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "office@acme.test", kind="shared")
    create_account(sandbox, "ana@acme.test")
    shared = Graph(sandbox, sign_in(sandbox, "office@acme.test")["access_token"])
    user = Graph(sandbox, sign_in(sandbox, "ana@acme.test")["access_token"])
    assert shared.ok("GET", "me/mailboxSettings")["userPurpose"] == "shared"
    assert user.ok("GET", "me/mailboxSettings")["userPurpose"] == "user"


def test_cancel_redirects_with_access_denied(sandbox: SandboxProcess) -> None:
    session = ca_session(sandbox)
    app = msal_app(sandbox, session)
    flow = SignIn(sandbox, session, app)
    params = flow.redirect_params(flow.cancel())
    assert params["error"] == "access_denied" and params["error_subcode"] == "cancel"
    assert params["state"] == flow.flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow.flow, params)
    assert result["error"] == "access_denied"


def test_wrong_pkce_verifier_is_refused(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    redirect = flow.password("ana@acme.test")
    flow.flow["code_verifier"] = "x" * 50
    result = flow.redeem(redirect)
    assert result["error"] == "invalid_grant"
    assert 501481 in result["error_codes"]


def test_an_authorization_code_works_once(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    app = msal_app(sandbox, session)
    flow = SignIn(sandbox, session, app)
    params = flow.redirect_params(flow.password("ana@acme.test"))
    first = app.acquire_token_by_authorization_code(
        params["code"], SCOPES, redirect_uri=flow.flow["redirect_uri"],
        data={"code_verifier": flow.flow["code_verifier"]})
    again = app.acquire_token_by_authorization_code(
        params["code"], SCOPES, redirect_uri=flow.flow["redirect_uri"],
        data={"code_verifier": flow.flow["code_verifier"]})
    assert "access_token" in first
    assert again["error"] == "invalid_grant" and 54005 in again["error_codes"]


def test_a_wrong_client_secret_is_refused(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session, secret="not-it"))
    result = flow.redeem(flow.password("ana@acme.test"))
    assert result["error"] == "invalid_client" and 7000215 in result["error_codes"]


def test_refresh_rotates_the_refresh_token(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    first = sign_in(sandbox, "ana@acme.test")
    app = msal_app(sandbox, ca_session(sandbox))
    renewed = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=["User.Read"])
    assert renewed["access_token"] and renewed["refresh_token"] != first["refresh_token"]
    assert Graph(sandbox, renewed["access_token"]).get("me").status_code == 200

    replayed = msal_app(sandbox, ca_session(sandbox)).acquire_token_by_refresh_token(
        first["refresh_token"], scopes=["User.Read"])
    assert replayed["error"] == "invalid_grant"


def test_an_injected_invalid_grant_fails_the_next_refresh(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    tokens = sign_in(sandbox, "ana@acme.test")
    sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "ana@acme.test"})
    result = msal_app(sandbox, ca_session(sandbox)).acquire_token_by_refresh_token(
        tokens["refresh_token"], scopes=["User.Read"])
    assert result["error"] == "invalid_grant" and 50173 in result["error_codes"]


def test_revoke_sign_in_sessions_ends_every_grant(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    tokens = sign_in(sandbox, "ana@acme.test")
    graph = Graph(sandbox, tokens["access_token"])
    assert graph.ok("POST", "me/revokeSignInSessions")["value"] is True

    assert graph.get("me").status_code == 401
    assert graph.get("me").json()["error"]["code"] == "InvalidAuthenticationToken"
    refreshed = msal_app(sandbox, ca_session(sandbox)).acquire_token_by_refresh_token(
        tokens["refresh_token"], scopes=["User.Read"])
    assert refreshed["error"] == "invalid_grant"


def test_form_post_response_mode_returns_a_self_submitting_form(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    app = msal_app(sandbox, session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, response_mode="form_post")
    page = session.get(flow["auth_uri"]).text
    flow_id = re.search(r"name='flow' value='([^']+)'", page)
    assert flow_id
    form = session.post(flow["auth_uri"].split("?")[0],
                        data={"flow": flow_id.group(1), "login": "ana@acme.test", "passwd": "password"})
    assert f"action='{REDIRECT_URI}'" in form.text
    fields = dict(re.findall(r"name='([^']+)' value='([^']*)'", form.text))
    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result["id_token_claims"]["preferred_username"] == "ana@acme.test"


def test_the_msal_token_cache_refreshes_silently(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    app = msal_app(sandbox, session)
    flow = SignIn(sandbox, session, app)
    first = flow.redeem(flow.password("ana@acme.test"))
    [account] = app.get_accounts()
    assert account["username"] == "ana@acme.test"

    cached = app.acquire_token_silent(SCOPES, account=account)
    assert cached["access_token"] == first["access_token"]
    refreshed = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert refreshed["access_token"] != first["access_token"]
    assert Graph(sandbox, refreshed["access_token"]).get("me").status_code == 200


def test_a_tenant_specific_authority_issues_for_that_tenant(sandbox: SandboxProcess) -> None:
    account = create_account(sandbox, "ana@acme.test")
    session = ca_session(sandbox)
    app = msal_app(sandbox, session, tenant=account["tenant_id"])
    flow = SignIn(sandbox, session, app)
    assert flow.action == f"{sandbox.base_url}/{account['tenant_id']}/oauth2/v2.0/authorize"
    result = flow.redeem(flow.password("ana@acme.test"))
    assert result["id_token_claims"]["iss"] == f"{sandbox.base_url}/{account['tenant_id']}/v2.0"


def test_an_expired_access_token_is_refused_until_refreshed(sandbox: SandboxProcess) -> None:
    create_account(sandbox, "ana@acme.test")
    tokens = sign_in(sandbox, "ana@acme.test")
    assert sandbox.control("POST", "/microsoft/ana@acme.test/expire-access-tokens") == {"expired": 1}
    assert Graph(sandbox, tokens["access_token"]).get("me").status_code == 401
    renewed = msal_app(sandbox, ca_session(sandbox)).acquire_token_by_refresh_token(
        tokens["refresh_token"], scopes=["User.Read"])
    assert Graph(sandbox, renewed["access_token"]).get("me").status_code == 200
