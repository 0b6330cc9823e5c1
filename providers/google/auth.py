"""Google sign-in, token refresh and revocation (OAuth 2.0 web-server flow with PKCE).

Scopes, the fewest that cover what Aspire does:

- ``openid``: the ID token's ``sub``, Google's stable account id, which survives a change of
  address; it is the connection's ``provider_account_id``.
- ``https://www.googleapis.com/auth/userinfo.email`` (what the ``email`` shorthand expands to, and
  the form Google echoes back, so the granted scope set compares equal to the requested one): the ID
  token carries the signed-in address.
- ``https://www.googleapis.com/auth/gmail.modify``: read messages and labels, create the Aspire
  labels, move mail between them, read the send-as addresses, and send. Gmail's messages.send and
  labels.create accept it, so neither ``gmail.send`` nor ``gmail.labels`` is asked for on top.
- ``https://www.googleapis.com/auth/calendar.events``: read and write events on the user's calendars.

Google's token endpoint is reached through requests (requests-oauthlib inside the Flow for the code
exchange, google-auth's requests transport for refreshes, plain requests for revocation). Each
session ignores the environment: this machine and many containers set ``REQUESTS_CA_BUNDLE``, which
would silently replace the configured CA bundle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from providers.base import AuthRequest, Grant
from providers.errors import SignInCancelled, SignInFailed
from providers.http import PerThread

from . import mapping
from .transport import error_for_status, google_errors

SCOPES: tuple[str, ...] = (
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/calendar.events",
)


@dataclass(frozen=True)
class GoogleConfig:
    """Where Google is and who we are to it. Real Google by default; the sandbox (or any other
    Google-compatible host) by changing the URIs, ``api_endpoint`` and ``ca_bundle``."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"
    revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    # None: the endpoints in the client library's discovery documents (Google itself).
    api_endpoint: str | None = None
    ca_bundle: str | None = None
    timeout: float = 30.0
    scopes: tuple[str, ...] = SCOPES


def new_session(config: GoogleConfig) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE (and proxies) from the environment win over verify
    session.verify = config.ca_bundle or True
    return session


class TokenRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with the configured timeout (its own default is 120 s)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session)
        self.timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers, timeout=timeout or self.timeout,
                                **kwargs)


class GoogleAuth:
    def __init__(self, config: GoogleConfig, sessions: PerThread[requests.Session]) -> None:
        self.config = config
        self.sessions = sessions

    @property
    def session(self) -> requests.Session:
        """This thread's session (token refresh and revocation)."""
        return self.sessions.get()

    def _flow(self, scopes: Sequence[str], redirect_uri: str, code_verifier: str | None = None) -> Flow:
        config = self.config
        client_config = {"web": {
            "client_id": config.client_id, "client_secret": config.client_secret, "auth_uri": config.auth_uri,
            "token_uri": config.token_uri, "redirect_uris": [redirect_uri],
        }}
        flow = Flow.from_client_config(client_config, list(scopes), redirect_uri=redirect_uri,
                                       code_verifier=code_verifier, autogenerate_code_verifier=code_verifier is None)
        # The Flow's OAuth2Session is a requests.Session of its own: it gets the same treatment.
        flow.oauth2session.trust_env = False
        flow.oauth2session.verify = config.ca_bundle or True
        return flow

    def begin_sign_in(self, *, state: str, login_hint: str = "") -> AuthRequest:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient
        scopes = list(self.config.scopes)
        flow = self._flow(scopes, self.config.redirect_uri)
        options = {"login_hint": login_hint} if login_hint else {}
        # offline + consent: Google issues a refresh token only on a consent screen, and a user
        # reconnecting after a disconnect would otherwise skip it and come back without one.
        url, _ = flow.authorization_url(access_type="offline", prompt="consent", include_granted_scopes="true",
                                        state=state, **options)
        flow.oauth2session.close()
        return AuthRequest(url=url, flow={
            "code_verifier": flow.code_verifier, "redirect_uri": self.config.redirect_uri, "scopes": scopes,
        })

    def complete_sign_in(self, *, flow: Mapping[str, Any], params: Mapping[str, str]) -> Grant:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#handlingresponse
        error = params.get("error")
        if error == "access_denied":
            # Google sends no reason with it: the person pressed Cancel or Deny, or could not sign in
            # at all (a Google Group has no account) and came back.
            raise SignInCancelled("access_denied", user_message=mapping.SIGN_IN_CANCELLED)
        if error:
            raise SignInFailed(error, user_message=mapping.sign_in_error_message(error))
        if not params.get("code"):
            raise SignInFailed("the callback carried no code")
        requested: list[str] = list(flow["scopes"])
        oauth_flow = self._flow(requested, flow["redirect_uri"], code_verifier=flow["code_verifier"])
        try:
            # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code
            token: Mapping[str, Any] = oauth_flow.fetch_token(code=params["code"], timeout=self.config.timeout)
        except Warning as changed:
            # oauthlib raises (not warns) when the granted scopes differ from the requested ones,
            # which Google's per-scope consent makes a normal outcome; the token is still good.
            if not isinstance(getattr(changed, "token", None), Mapping):
                raise
            token = changed.token  # type: ignore[attr-defined]
        except OAuth2Error as failure:
            raise SignInFailed(f"token exchange: {failure.error}",
                               user_message=mapping.sign_in_error_message(failure.error)) from failure
        except requests.RequestException as failure:
            raise SignInFailed(f"token exchange: {type(failure).__name__}", user_message=(
                "Aspire could not reach Google to finish the sign-in. Please try again in a minute.")) from failure
        finally:
            oauth_flow.oauth2session.close()
        return mapping.grant_from_token(token, token_uri=self.config.token_uri, requested_scopes=requested)

    def credentials(self, grant: Grant) -> Credentials:
        """google-auth credentials for a grant: the access token, and what it takes to renew it."""
        expiry = grant.expires_at.astimezone(dt.UTC).replace(tzinfo=None)  # google-auth compares naive UTC
        # A refresh token is only good at the token endpoint that issued it, which the grant records.
        return Credentials(
            token=grant.access_token, refresh_token=grant.data["refresh_token"], expiry=expiry,
            token_uri=grant.data.get("token_uri") or self.config.token_uri,
            client_id=self.config.client_id, client_secret=self.config.client_secret,
        )

    def refresh(self, grant: Grant) -> Grant:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#offline
        credentials = self.credentials(grant)
        with google_errors():
            credentials.refresh(TokenRequest(self.session, self.config.timeout))
        return mapping.refreshed_grant(grant, credentials)

    def revoke(self, grant: Grant) -> None:
        # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        # Revoking the refresh token ends the whole grant, its access tokens included. The token
        # goes in the form body, never the URL, so it cannot end up in a log line.
        with google_errors():
            response = self.session.post(
                self.config.revoke_uri, data={"token": grant.data["refresh_token"]},
                headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=self.config.timeout)
        if response.ok or mapping.oauth_error_code(response) == "invalid_token":
            return  # invalid_token: already revoked, expired or never valid, which is what we wanted
        raise error_for_status(response.status_code, response.headers, f"revoke: HTTP {response.status_code}")

