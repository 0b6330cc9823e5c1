"""The Microsoft identity platform (v2.0 endpoints): discovery, the sign-in pages, the token endpoint.

The real client library (msal) talks to these exactly as it talks to login.microsoftonline.com.
Any client_id is accepted; the client secret must be ``CLIENT_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..store import now
from .common import PROVIDER, Json

if TYPE_CHECKING:
    from ..app import Sandbox

CLIENT_SECRET = "sandbox-secret"
ACCESS_TOKEN_LIFETIME = 3600
CODE_LIFETIME = 600
# The v2.0 endpoints keep these tenants generic: the issuer then names the user's own tenant.
GENERIC_TENANTS = ("common", "organizations", "consumers")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def aadsts_description(code: int, description: str, trace_id: str, correlation_id: str, stamp: str) -> str:
    return f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}"


def oauth_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return JSONResponse(
        {
            "error": error,
            "error_description": aadsts_description(code, description, trace_id, correlation_id, stamp),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        status_code=status,
    )


class Identity:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        # One signing key per process: msal does not check the signature, other clients may via jwks_uri.
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(8)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/discovery/v2.0/keys", self.keys),
            Route("/{tenant}/oauth2/v2.0/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/{tenant}/oauth2/v2.0/authorize/cancel", self.cancel),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/{tenant}/oauth2/v2.0/logout", self.logout),
            Route("/_sandbox/microsoft/{email}/expire-access-tokens", self.expire_access_tokens, methods=["POST"]),
        ]

    # -- discovery -----------------------------------------------------------------------
    def issuer(self, tenant_id: str) -> str:
        return f"{self.sandbox.base_url}/{tenant_id}/v2.0"

    async def openid_configuration(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
        tenant = request.path_params["tenant"]
        base = f"{self.sandbox.base_url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant.lower() in GENERIC_TENANTS else tenant
        return JSONResponse({
            "issuer": self.issuer(issuer_tenant),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username",
                                 "oid", "tid", "ver"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "request_uri_parameter_supported": False,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": None,
            "cloud_instance_name": "localhost",
            "cloud_graph_host_name": urlsplit(self.sandbox.base_url).netloc,
            "msgraph_host": urlsplit(self.sandbox.base_url).netloc,
        })

    async def keys(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-the-signature
        numbers = self.signing_key.public_key().public_numbers()
        return JSONResponse({"keys": [{
            "kty": "RSA", "use": "sig", "kid": self.key_id, "alg": "RS256",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes(3, "big")),
        }]})

    # -- interactive sign-in -------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code
        if request.method == "GET":
            return self.start_sign_in(request)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        login = self.store.pending_logins.get(form.get("flow", ""))
        if login is None or login["provider"] != PROVIDER:
            return self.page("Sign in", "<p>This sign-in has expired. Go back to the application and start again.</p>",
                             status=400)
        if login["stage"] == "mfa":
            return self.check_code(login, form.get("otc", ""))
        return self.check_password(login, form.get("login", ""), form.get("passwd", ""))

    def start_sign_in(self, request: Request) -> Response:
        params = request.query_params
        tenant = request.path_params["tenant"]
        missing = [p for p in ("client_id", "redirect_uri", "response_type", "scope") if not params.get(p)]
        if missing:
            return self.page("Sign in", f"<p>AADSTS900144: The request body must contain the following "
                                        f"parameter: '{html.escape(missing[0])}'.</p>", status=400)
        if params["response_type"] != "code":
            return self.redirect_error(params["redirect_uri"], params.get("state"), "unsupported_response_type",
                                       "AADSTS70005: response_type 'id_token' is not enabled for the application.")
        response_mode = params.get("response_mode", "query")
        if response_mode not in ("query", "form_post"):
            return self.redirect_error(params["redirect_uri"], params.get("state"), "invalid_request",
                                       "AADSTS900131: The response_mode is not supported for this request.")
        method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
        if method not in ("", "plain", "S256"):
            return self.redirect_error(params["redirect_uri"], params.get("state"), "invalid_request",
                                       "AADSTS501491: Invalid code_challenge_method.")
        flow = secrets.token_urlsafe(24)
        self.store.pending_logins[flow] = {
            "flow": flow, "provider": PROVIDER, "stage": "password", "tenant": tenant, "created": now(),
            "client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
            "scope": params["scope"], "state": params.get("state"), "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"), "code_challenge_method": method,
            "response_mode": response_mode, "account": None,
        }
        return self.password_page(flow, params.get("login_hint", ""))

    def check_password(self, login: Json, email: str, password: str) -> Response:
        flow = login["flow"]
        account = self.store.find_account(PROVIDER, email) if email.strip() else None
        if account is None:
            return self.password_page(flow, email, "AADSTS50034: We couldn't find an account with that username.")
        if account["kind"] == "distribution_list":
            # A distribution list is a mail-enabled group, not a user: there is no user account to sign
            # in to. The sign-in cannot go on, and the error goes back to the application, which can
            # tell the person why (the address itself is hidden from the application).
            # Reference: https://learn.microsoft.com/en-us/previous-versions/azure/dn645544(v=azure.100)
            self.store.pending_logins.pop(flow, None)
            stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
            description = aadsts_description(
                50034, f"The user account {{EmailHidden}} does not exist in the '{account['tenant_id']}' directory. "
                "To sign into this application, the account must be added to the directory.",
                str(uuid.uuid4()), str(uuid.uuid4()), stamp)
            return self.redirect_error(login["redirect_uri"], login["state"], "access_denied", description,
                                       login["response_mode"])
        if not secrets.compare_digest(password.encode(), str(account["password"]).encode()):
            return self.password_page(flow, email, "AADSTS50126: Your account or password is incorrect.")
        if account["kind"] == "alias":
            # Signing in with an alias address reaches the mailbox it belongs to.
            primary = self.store.find_account(PROVIDER, account.get("alias_of") or "")
            if primary is None:
                return self.password_page(flow, email, "AADSTS50034: We couldn't find an account with that username.")
            account = primary
        login["account"] = account["id"]
        if account["mfa"]:
            login["stage"] = "mfa"
            return self.code_page(flow)
        return self.finish(login)

    def check_code(self, login: Json, code: str) -> Response:
        flow = login["flow"]
        account = self.store.accounts.get(login["account"])
        if account is None or not secrets.compare_digest(code.strip().encode(), str(account["mfa_code"]).encode()):
            return self.code_page(flow, "AADSTS50181: The code you entered is incorrect. Try again.")
        return self.finish(login)

    def finish(self, login: Json) -> Response:
        self.store.pending_logins.pop(login["flow"], None)
        account = self.store.accounts[login["account"]]
        code = secrets.token_urlsafe(48)
        self.store.auth_codes[code] = {
            "provider": PROVIDER, "account": account["id"], "client_id": login["client_id"],
            "redirect_uri": login["redirect_uri"], "scope": login["scope"], "nonce": login["nonce"],
            "code_challenge": login["code_challenge"], "code_challenge_method": login["code_challenge_method"],
            "expires_at": now() + CODE_LIFETIME, "redeemed": False,
        }
        query = {"code": code, "client_info": self.client_info(account), "session_state": str(uuid.uuid4())}
        if login["state"] is not None:
            query["state"] = login["state"]
        return self.respond(login["redirect_uri"], login["response_mode"], query)

    async def cancel(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response
        # Backing out of the sign-in pages answers access_denied with error_subcode=cancel and no
        # AADSTS code (AADSTS65004 is declining the consent prompt, which the sandbox does not show).
        login = self.store.pending_logins.pop(request.query_params.get("flow", ""), None)
        if login is None:
            return self.page("Sign in", "<p>This sign-in has expired.</p>", status=400)
        query = {"error": "access_denied", "error_subcode": "cancel"}
        if login["state"] is not None:
            query["state"] = login["state"]
        return self.respond(login["redirect_uri"], login["response_mode"], query)

    async def logout(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#send-a-sign-out-request
        # The sandbox keeps no browser session, so signing out only sends the user back.
        target = request.query_params.get("post_logout_redirect_uri")
        if target:
            return RedirectResponse(target, status_code=302)
        return self.page("Signed out", "<p>You signed out of your account.</p>")

    def redirect_error(self, redirect_uri: str, state: str | None, error: str, description: str,
                       response_mode: str = "query") -> Response:
        query = {"error": error, "error_description": description}
        if state is not None:
            query["state"] = state
        return self.respond(redirect_uri, response_mode, query)

    def respond(self, redirect_uri: str, response_mode: str, params: dict[str, str]) -> Response:
        """Hand the result back to the app: a redirect, or with form_post a self-submitting form."""
        if response_mode != "form_post":
            return RedirectResponse(self.with_query(redirect_uri, params), status_code=302)
        fields = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v, quote=True)}'>"
                         for k, v in params.items())
        return HTMLResponse(
            "<!doctype html><html><head><title>Working...</title></head><body onload='document.forms[0].submit()'>"
            f"<form method='post' action='{html.escape(redirect_uri, quote=True)}'>{fields}"
            "<noscript><button type='submit'>Continue</button></noscript></form></body></html>"
        )

    @staticmethod
    def with_query(url: str, query: dict[str, str]) -> str:
        return url + ("&" if "?" in url else "?") + urlencode(query)

    # -- pages ---------------------------------------------------------------------------
    def page(self, title: str, content: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title></head><body><h1>Microsoft (sandbox)</h1><h2>{html.escape(title)}</h2>"
            f"{content}</body></html>",
            status_code=status,
        )

    def error_html(self, error: str) -> str:
        return f"<p id='error' role='alert' style='color:#a00'>{html.escape(error)}</p>" if error else ""

    def password_page(self, flow: str, email: str = "", error: str = "") -> HTMLResponse:
        cancel = f"authorize/cancel?flow={flow}"  # relative to .../oauth2/v2.0/authorize, as a browser resolves it
        return self.page("Sign in", (
            f"{self.error_html(error)}"
            "<form method='post' action='authorize'>"
            f"<input type='hidden' name='flow' value='{flow}'>"
            "<label>Email <input type='email' name='login' id='login' "
            f"value='{html.escape(email, quote=True)}' autofocus></label><br>"
            "<label>Password <input type='password' name='passwd' id='passwd'></label><br>"
            "<button type='submit' id='signin'>Sign in</button> "
            f"<a href='{cancel}' id='cancel'>Cancel</a>"
            "</form>"
        ), status=200)

    def code_page(self, flow: str, error: str = "") -> HTMLResponse:
        return self.page("Enter code", (
            f"{self.error_html(error)}"
            "<p>Enter the code from your authenticator app.</p>"
            "<form method='post' action='authorize'>"
            f"<input type='hidden' name='flow' value='{flow}'>"
            "<label>Code <input type='text' name='otc' id='otc' inputmode='numeric' autofocus></label><br>"
            "<button type='submit' id='verify'>Verify</button> "
            f"<a href='authorize/cancel?flow={flow}' id='cancel'>Cancel</a>"
            "</form>"
        ))

    async def expire_access_tokens(self, request: Request) -> Response:
        """Control API: end the lifetime of the mailbox's access tokens now, so the next Graph call
        gets 401 and the client must refresh (its refresh tokens stay valid)."""
        account = self.store.find_account(PROVIDER, request.path_params["email"])
        if account is None:
            raise LookupError(f"no microsoft account {request.path_params['email']}")
        expired = 0
        for grant in self.store.access_tokens.values():
            if grant["account"] == account["id"] and grant["provider"] == PROVIDER:
                grant["expires_at"] = now() - 1
                expired += 1
        return JSONResponse({"expired": expired})

    # -- token endpoint ------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode("utf-8").partition(":")
        if not client_id:
            return oauth_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_id'.")
        if secret is None:
            return oauth_error(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: "
                               "'client_assertion' or 'client_secret'.")
        if not secrets.compare_digest(secret.encode(), CLIENT_SECRET.encode()):
            return oauth_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request "
                               "is the client secret value, not the client secret ID.")
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self.redeem_code(request, form, client_id)
        if grant_type == "refresh_token":
            return self.redeem_refresh_token(request, form, client_id)
        if not grant_type:
            return oauth_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'.")
        return oauth_error(400, "unsupported_grant_type", 70003,
                           f"The app requested an unsupported grant type '{grant_type}'.")

    def redeem_code(self, request: Request, form: dict[str, str], client_id: str) -> Response:
        grant = self.store.auth_codes.get(form.get("code", ""))
        if grant is None or grant["provider"] != PROVIDER:
            return oauth_error(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant["redeemed"]:
            return oauth_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                                                            "please retry with a new valid code or use an "
                                                            "existing refresh token.")
        if grant["expires_at"] < now():
            return oauth_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token "
                                                            "has expired due to inactivity.")
        if grant["client_id"] != client_id:
            return oauth_error(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is "
                                                            "not valid for this client.")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return oauth_error(400, "invalid_grant", 50011, "The redirect URI specified in the request does not "
                                                            "match the redirect URIs of the authorization request.")
        if grant["code_challenge"]:
            verifier = form.get("code_verifier", "")
            expected = (b64url(hashlib.sha256(verifier.encode("ascii")).digest())
                        if grant["code_challenge_method"] == "S256" else verifier)
            if not verifier or not secrets.compare_digest(expected.encode(), grant["code_challenge"].encode()):
                return oauth_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the "
                                                                 "code_challenge supplied in the authorization "
                                                                 "request.")
        # Codes are single use: a replay is refused but the grant it produced stays valid.
        grant["redeemed"] = True
        account = self.store.accounts.get(grant["account"])
        if account is None:
            return oauth_error(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
        fault = self.store.take_fault(kinds=("invalid_grant",), method="POST", path=request.url.path, account=account)
        if fault is not None:
            return self.injected_invalid_grant(fault)
        scopes = grant["scope"].split()
        return self.token_response(account, client_id, scopes, grant["nonce"], "offline_access" in scopes)

    def redeem_refresh_token(self, request: Request, form: dict[str, str], client_id: str) -> Response:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
        refresh_token = form.get("refresh_token", "")
        grant = self.store.refresh_tokens.get(refresh_token)
        if grant is None or grant["provider"] != PROVIDER:
            return oauth_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                                                            "expired due to inactivity or was revoked.")
        if grant["client_id"] != client_id:
            return oauth_error(400, "invalid_grant", 70000, "The refresh token was issued to a different client.")
        account = self.store.accounts.get(grant["account"])
        if account is None:
            return oauth_error(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
        fault = self.store.take_fault(kinds=("invalid_grant",), method="POST", path=request.url.path, account=account)
        if fault is not None:
            return self.injected_invalid_grant(fault)
        # Rotation: the refresh token just used is spent; the response carries its successor.
        del self.store.refresh_tokens[refresh_token]
        scopes = form.get("scope", "").split() or grant["scopes"]
        return self.token_response(account, client_id, scopes, nonce=None, with_refresh=True)

    def injected_invalid_grant(self, fault: Json) -> Response:
        code = int(fault.get("error_code", 50173))
        return oauth_error(400, "invalid_grant", code, fault.get(
            "message", "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
                       "The user might have changed or reset their password."))

    def token_response(self, account: Json, client_id: str, scopes: list[str], nonce: str | None,
                       with_refresh: bool) -> Response:
        access, refresh = self.store.issue_tokens(
            account=account, provider=PROVIDER, client_id=client_id, scopes=scopes,
            with_refresh=with_refresh, lifetime=ACCESS_TOKEN_LIFETIME,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scopes if s != "offline_access"),
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access,
            "client_info": self.client_info(account),
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        if "openid" in scopes:
            body["id_token"] = self.id_token(account, client_id, nonce)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def client_info(self, account: Json) -> str:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
        return b64url(json.dumps({"uid": account["id"], "utid": account["tenant_id"]}).encode())

    def id_token(self, account: Json, client_id: str, nonce: str | None) -> str:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
        issued = int(time.time())
        claims: dict[str, Any] = {
            "aud": client_id, "iss": self.issuer(account["tenant_id"]), "iat": issued, "nbf": issued,
            "exp": issued + ACCESS_TOKEN_LIFETIME, "name": account["display_name"], "oid": account["id"],
            "preferred_username": account["email"], "email": account["email"],
            "sub": b64url(hashlib.sha256(f"{account['id']}:{client_id}".encode()).digest()),
            "tid": account["tenant_id"], "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        header = {"typ": "JWT", "alg": "RS256", "kid": self.key_id}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        signature = self.signing_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)
