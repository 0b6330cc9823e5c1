"""Google's OAuth 2.0 for web server apps: the sign-in pages, the token endpoint and revocation.

A client is any client id with the client secret ``sandbox-secret``: the sandbox has no console in
which to register apps, and one shared secret still lets tests exercise ``invalid_client``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import oauth_error
from .common import Json, b64url

if TYPE_CHECKING:
    from . import GoogleEmulator

CLIENT_SECRET = "sandbox-secret"
ACCESS_TOKEN_LIFETIME = 3599
CODE_LIFETIME = 600
ISSUER = "https://accounts.google.com"
# Kinds that own no Google account of their own, with what the sign-in page says about them.
REFUSED_KINDS = {
    "shared": "This address is a Google Group (collaborative inbox). Groups can't sign in; "
              "sign in with your own account instead.",
    "distribution_list": "This address is a Google Group. Groups can't sign in; "
                         "sign in with your own account instead.",
    "room": "This address is a calendar resource (room). Resources can't sign in.",
}
IDENTITY_SCOPES = {"openid", "email", "profile",
                   "https://www.googleapis.com/auth/userinfo.email",
                   "https://www.googleapis.com/auth/userinfo.profile"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Google Accounts (sandbox)</title></head>
<body style="font-family: sans-serif; max-width: 28em; margin: 4em auto">
<h1>{title}</h1>
<p>{subtitle}</p>
{error}
<form method="post" action="{action}">
<input type="hidden" name="login_id" value="{login_id}">
{fields}
<p><button type="submit" name="action" value="next">Next</button>
<button type="submit" name="action" value="cancel">Cancel</button></p>
</form>
</body></html>
"""
SIGN_IN_FIELDS = """<p><label>Email
<input type="email" name="email" value="{email}" autocomplete="username"></label></p>
<p><label>Password <input type="password" name="password" autocomplete="current-password"></label></p>"""
MFA_FIELDS = """<p><label>Enter the code <input type="text" name="code" inputmode="numeric"
autocomplete="one-time-code"></label></p>"""


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (all these endpoints take) as a dict."""
    return dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))


class GoogleOAuth:
    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emulator = emulator
        self.store = emulator.store
        # Signs id_tokens; the public half is served as a JWK set like Google's.
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(8)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/o/oauth2/v2/auth", self.authorize, methods=["GET"]),
            Route("/o/oauth2/v2/auth/signin", self.sign_in, methods=["POST"]),
            Route("/o/oauth2/v2/auth/challenge", self.challenge, methods=["POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/oauth2/v3/certs", self.certs, methods=["GET"]),
            Route("/oauth2/v3/userinfo", self.userinfo, methods=["GET"]),
        ]

    # -- the interactive part ----------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient
        params = request.query_params
        missing = [name for name in ("client_id", "redirect_uri", "response_type", "scope") if not params.get(name)]
        if missing:
            return self._error_page(f"Error 400: invalid_request. Required parameter is missing: {missing[0]}")
        if params["response_type"] != "code":
            return self._error_page("Error 400: invalid_request. Only response_type=code is supported.")
        method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
        if method not in ("", "plain", "S256"):
            return self._error_page("Error 400: invalid_request. Invalid code_challenge_method.")
        access_type = params.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return self._error_page("Error 400: invalid_request. Invalid access_type.")
        login_id = secrets.token_urlsafe(16)
        self.store.pending_logins[login_id] = {
            "provider": "google", "client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
            "scopes": params["scope"].split(), "state": params.get("state"),
            "code_challenge": params.get("code_challenge"), "code_challenge_method": method or None,
            "offline": access_type == "offline", "consent": "consent" in params.get("prompt", "").split(),
            "account": None, "created": time.time(),
        }
        return self._sign_in_page(login_id, email=params.get("login_hint", ""))

    async def sign_in(self, request: Request) -> Response:
        form = await form_fields(request)
        login = self.store.pending_logins.get(str(form.get("login_id", "")))
        if login is None or login["provider"] != "google":
            return self._error_page("This sign-in has expired. Start again from the app.")
        login_id = str(form["login_id"])
        if form.get("action") == "cancel":
            return self._finish_denied(login_id)
        email = str(form.get("email", "")).strip().lower()
        account = self.store.find_account("google", email)
        if account is None or account["password"] != form.get("password", ""):
            return self._sign_in_page(login_id, email=email, error="Wrong email or password. Try again.")
        if account["kind"] in REFUSED_KINDS:
            return self._sign_in_page(login_id, email=email, error=REFUSED_KINDS[account["kind"]])
        if account["kind"] == "alias":
            # A Workspace alternate address signs in the user who owns it.
            owner = self.store.find_account("google", account.get("alias_of") or "")
            if owner is None:
                return self._sign_in_page(login_id, email=email,
                                          error="This address is an alias with no account behind it.")
            account = owner
        login["account"] = account["id"]
        if account["mfa"]:
            return self._challenge_page(login_id)
        return self._finish_granted(login_id)

    async def challenge(self, request: Request) -> Response:
        form = await form_fields(request)
        login_id = str(form.get("login_id", ""))
        login = self.store.pending_logins.get(login_id)
        if login is None or login["provider"] != "google" or login["account"] is None:
            return self._error_page("This sign-in has expired. Start again from the app.")
        if form.get("action") == "cancel":
            return self._finish_denied(login_id)
        account = self.store.accounts.get(login["account"])
        if account is None:
            return self._error_page("This account no longer exists.")
        if str(form.get("code", "")).strip() != account["mfa_code"]:
            return self._challenge_page(login_id, error="Wrong code. Try again.")
        return self._finish_granted(login_id)

    def _finish_granted(self, login_id: str) -> Response:
        login = self.store.pending_logins.pop(login_id)
        code = "4/" + secrets.token_urlsafe(32)
        self.store.auth_codes[code] = {**login, "expires_at": time.time() + CODE_LIFETIME}
        query = {"code": code, "scope": " ".join(login["scopes"])}
        return self._redirect(login, query)

    def _finish_denied(self, login_id: str) -> Response:
        login = self.store.pending_logins.pop(login_id)
        return self._redirect(login, {"error": "access_denied"})

    def _redirect(self, login: Json, query: dict[str, str]) -> Response:
        if login["state"] is not None:
            query = {**query, "state": login["state"]}
        separator = "&" if "?" in login["redirect_uri"] else "?"
        return RedirectResponse(login["redirect_uri"] + separator + urllib.parse.urlencode(query), status_code=302)

    def _sign_in_page(self, login_id: str, *, email: str = "", error: str = "") -> Response:
        return self._page("Sign in", "to continue to the app", "/o/oauth2/v2/auth/signin", login_id,
                          SIGN_IN_FIELDS.format(email=html.escape(email)), error)

    def _challenge_page(self, login_id: str, *, error: str = "") -> Response:
        return self._page("2-Step Verification", "Enter the code from your authenticator app",
                          "/o/oauth2/v2/auth/challenge", login_id, MFA_FIELDS, error)

    @staticmethod
    def _page(title: str, subtitle: str, action: str, login_id: str, fields: str, error: str) -> Response:
        error_html = f'<p role="alert" class="error" style="color: #b00">{html.escape(error)}</p>' if error else ""
        return HTMLResponse(PAGE.format(title=title, subtitle=subtitle, action=action, login_id=login_id,
                                        fields=fields, error=error_html))

    @staticmethod
    def _error_page(message: str) -> Response:
        return HTMLResponse(f"<!doctype html><title>Error</title><h1>Access blocked</h1><p>{html.escape(message)}</p>",
                            status_code=400)

    # -- the token endpoint ------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code
        form = await form_fields(request)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            decoded = base64.b64decode(basic[6:]).decode("utf-8")
            user, _, password = decoded.partition(":")
            client_id, client_secret = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if not client_id:
            return oauth_error(400, "invalid_request", "Could not determine client ID from request.")
        if client_secret != CLIENT_SECRET:
            return oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = form.get("grant_type")
        request.scope["state"]["operation"] = f"google.token.{grant_type}"
        if grant_type == "authorization_code":
            return self._exchange_code(form, client_id)
        if grant_type == "refresh_token":
            return self._refresh(form, client_id, request)
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, form: dict[str, str], client_id: str) -> Response:
        # Codes are single use: taken out of the store before anything is checked.
        grant = self.store.auth_codes.pop(form.get("code", ""), None)
        if grant is None or grant["provider"] != "google" or grant["expires_at"] < time.time():
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        if grant["client_id"] != client_id:
            return oauth_error(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if grant["code_challenge"]:
            verifier = form.get("code_verifier", "")
            if not verifier:
                return oauth_error(400, "invalid_grant", "Missing code verifier.")
            if grant["code_challenge_method"] == "S256":
                expected = b64url(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip("=")
            else:
                expected = verifier
            if not secrets.compare_digest(expected, grant["code_challenge"]):
                return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        account = self.store.accounts.get(grant["account"])
        if account is None:
            return oauth_error(400, "invalid_grant", "Account has been deleted")
        # Google hands out a refresh token when the user first consents, and again only when the
        # app forces the consent screen (prompt=consent); revoking the grant starts over.
        already_granted = any(
            g["account"] == account["id"] and g["client_id"] == client_id for g in self.store.refresh_tokens.values()
        )
        access, refresh = self.store.issue_tokens(
            account=account, provider="google", client_id=client_id, scopes=grant["scopes"],
            with_refresh=grant["offline"] and (grant["consent"] or not already_granted),
            lifetime=ACCESS_TOKEN_LIFETIME,
        )
        body = self._token_body(access, account, client_id, grant["scopes"])
        if refresh is not None:
            body["refresh_token"] = refresh
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _refresh(self, form: dict[str, str], client_id: str, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#offline
        refresh = form.get("refresh_token", "")
        grant = self.store.refresh_tokens.get(refresh)
        if grant is None or grant["provider"] != "google" or grant["client_id"] != client_id:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        account = self.store.accounts.get(grant["account"])
        if account is None:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        fault = self.store.take_fault(kinds=("invalid_grant",), method=request.method, path=request.url.path,
                                      account=account)
        if fault is not None:
            # The user revoked access (or changed password): the whole grant is gone, not just this call.
            self.store.revoke(refresh)
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = grant["scopes"]
        if form.get("scope"):
            asked = form["scope"].split()
            if not set(asked) <= set(scopes):
                return oauth_error(400, "invalid_scope", "Some requested scopes were invalid.")
            scopes = asked
        # Google keeps the refresh token: only a new access token comes back.
        access, _ = self.store.issue_tokens(account=account, provider="google", client_id=client_id,
                                            scopes=scopes, with_refresh=False, lifetime=ACCESS_TOKEN_LIFETIME)
        return JSONResponse(self._token_body(access, account, client_id, scopes),
                            headers={"Cache-Control": "no-store"})

    def _token_body(self, access: str, account: Json, client_id: str, scopes: list[str]) -> Json:
        body: Json = {"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME, "scope": " ".join(scopes),
                      "token_type": "Bearer"}
        if IDENTITY_SCOPES & set(scopes):
            body["id_token"] = self._id_token(account, client_id)
        return body

    def _id_token(self, account: Json, client_id: str) -> str:
        # Reference: https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload
        issued = int(time.time())
        claims = {
            "iss": ISSUER, "azp": client_id, "aud": client_id, **self._identity(account),
            "iat": issued, "exp": issued + ACCESS_TOKEN_LIFETIME,
        }
        header = {"alg": "RS256", "kid": self.key_id, "typ": "JWT"}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()).rstrip("=") for part in (header, claims)
        )
        signature = self.signing_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature).rstrip("=")

    @staticmethod
    def _identity(account: Json) -> Json:
        return {"sub": account["id"].replace("-", ""), "email": account["email"], "email_verified": True,
                "name": account["display_name"]}

    async def userinfo(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/openid-connect/openid-connect#obtaininguserprofileinformation
        request.scope["state"]["operation"] = "google.userinfo"
        account = request.scope["state"].get("account")
        if account is None:
            return oauth_error(401, "invalid_request", "Invalid Credentials",
                               headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        return JSONResponse(self._identity(account))

    async def certs(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
        numbers = self.signing_key.public_key().public_numbers()

        def encode(value: int) -> str:
            return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip("=")

        key: dict[str, Any] = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.key_id,
                               "n": encode(numbers.n), "e": encode(numbers.e)}
        return JSONResponse({"keys": [key]})

    async def revoke(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        request.scope["state"]["operation"] = "google.revoke"
        token = request.query_params.get("token")
        if token is None:
            token = str((await form_fields(request)).get("token", ""))
        if not token or not self.store.revoke(token):
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        return JSONResponse({})
