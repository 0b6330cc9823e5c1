"""Sign-in and tokens through msal: the authorization-code flow with PKCE, refresh with rotation.

A ``Grant``'s data is the serialised msal token cache (one account: its refresh token, access token
and id token) and that account's ``home_account_id``. msal objects are rebuilt per call from it, so
the adapter keeps no tokens of its own and one provider serves every connection in a process.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from ..base import AuthRequest, Grant
from ..errors import AuthRevoked, ProviderError, SignInCancelled, SignInFailed, TransientError
from ..http import PerThread
from .config import MicrosoftConfig
from .graph import NETWORK_ERRORS

# Token endpoint errors that mean the grant itself is over: the user must sign in again.
# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
GRANT_OVER = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-codes-for-token-endpoint-errors
CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})
CONFIGURATION_REFUSED = (
    "Microsoft refused Aspire's own sign-in details, so syncing has stopped for now. Your administrator needs "
    "to check Aspire's Microsoft 365 configuration; nothing needs to change in your mailbox."
)

SIGN_IN_MESSAGES = {
    "consent_required": "Your Microsoft 365 administrator needs to approve Aspire Sync for your organisation "
                        "before you can connect. Please ask them, then try again.",
    "invalid_grant": "The sign-in took too long or was already used. Please connect again.",
    "temporarily_unavailable": "Microsoft's sign-in service is busy right now. Please try again in a few minutes.",
    "server_error": "Microsoft's sign-in service had a problem. Please try again in a few minutes.",
    "invalid_client": "Aspire's connection to Microsoft 365 is not set up correctly. Please tell your administrator.",
    "unauthorized_client": "Aspire's connection to Microsoft 365 is not set up correctly. "
                           "Please tell your administrator.",
}
UNREACHABLE = "Microsoft's sign-in service could not be reached. Please try again in a few minutes."
CANCELLED = "The sign-in was cancelled at Microsoft 365, so nothing changed."

# When Microsoft sends the browser back with an error, its description starts with an AADSTS code
# that says why. Those a user (or their administrator) can act on, in Aspire's words.
# Reference: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
AADSTS_CODE = re.compile(r"AADSTS(\d+)")
SIGN_IN_REASONS = {
    50034: "Microsoft 365 has no user account with that address, so nothing changed. Distribution lists and "
           "groups can't sign in, and Aspire syncs only your own mailbox: check the address, or enter your own, "
           "and save again.",
    50020: "That is not a Microsoft 365 work account, so nothing changed. Personal Microsoft accounts "
           "(Outlook.com, Hotmail) can't be connected: enter your work mailbox and save again.",
    50053: "Microsoft 365 has locked this account after too many sign-in attempts. Wait a few minutes, then "
           "save again, or ask your administrator.",
    50057: "This Microsoft 365 account is disabled, so it can't be connected. Please ask your administrator.",
    50105: "Your Microsoft 365 administrator has not given you access to Aspire Sync. Ask them to assign it to "
           "you, then save again.",
    53003: "Your organisation's sign-in rules (Conditional Access) blocked this sign-in. Please ask your "
           "Microsoft 365 administrator.",
    65001: SIGN_IN_MESSAGES["consent_required"],
    700016: "Aspire Sync is not available in your Microsoft 365 organisation yet. Please ask your administrator "
            "to approve it.",
}
SIGN_IN_REASONS[90072] = SIGN_IN_REASONS[50020]  # an account of another organisation (guest not invited)


def _description(result: Mapping[str, Any]) -> str:
    # error_description holds no secrets (an AADSTS code, trace and correlation ids).
    return f"{result.get('error')}: {result.get('error_description', '')}".strip()


def _sign_in_error(result: Mapping[str, Any]) -> SignInFailed:
    """The error the browser came back with. ``access_denied`` alone is the user backing out
    (``error_subcode=cancel``) or declining consent (AADSTS65004); with another AADSTS code it is
    Microsoft refusing the sign-in, and the code says why."""
    # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-codes-for-authorization-endpoint-errors
    found = AADSTS_CODE.search(str(result.get("error_description", "")))
    code = int(found.group(1)) if found else None
    if code in SIGN_IN_REASONS:
        return SignInFailed(_description(result), user_message=SIGN_IN_REASONS[code])
    if result["error"] == "access_denied":
        return SignInCancelled(_description(result), user_message=CANCELLED)
    return SignInFailed(_description(result), user_message=SIGN_IN_MESSAGES.get(result["error"]))


class MicrosoftAuth:
    def __init__(self, config: MicrosoftConfig, sessions: PerThread[requests.Session]) -> None:
        self.config = config
        self.sessions = sessions
        # msal caches discovery documents in an http_cache (no tokens, no personal data), so building
        # an app per call does not fetch the authority's metadata each time. One per thread: msal
        # locks the cache per app, not across the apps that would share it.
        self._local = threading.local()
        # msal asks login.microsoftonline.com to vouch for any other authority host ("instance
        # discovery"); nobody there knows an emulator or a private cloud, so it is off for those.
        host = urlsplit(config.authority).hostname or ""
        self.instance_discovery = None if host in WELL_KNOWN_AUTHORITY_HOSTS else False

    def _app(self, cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
        # Reference: https://learn.microsoft.com/en-us/python/api/msal/msal.application.confidentialclientapplication
        return msal.ConfidentialClientApplication(
            self.config.client_id,
            client_credential=self.config.client_secret,
            authority=self.config.authority,
            instance_discovery=self.instance_discovery,
            http_client=self.sessions.get(),
            http_cache=self._http_cache(),
            token_cache=cache or msal.SerializableTokenCache(),
        )

    def begin_sign_in(self, *, state: str, login_hint: str = "") -> AuthRequest:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code
        try:
            flow = self._app().initiate_auth_code_flow(
                list(self.config.scopes),
                redirect_uri=self.config.redirect_uri,
                state=state,
                login_hint=login_hint or None,
                # Let someone signed in to several Microsoft 365 accounts pick the mailbox to connect.
                prompt="select_account",
                # The code comes back in the query string, not form_post (which msal recommends and
                # warns about): a cross-site POST carries no SameSite=Lax session cookie, so the
                # callback could not find the flow it belongs to. The code is useless without the
                # PKCE verifier and the client secret, both kept server-side.
            )
        except (*NETWORK_ERRORS, ValueError) as exc:
            # ValueError: msal could not read the authority's discovery document.
            raise TransientError(f"starting sign-in: {exc.__class__.__name__}", user_message=UNREACHABLE) from exc
        return AuthRequest(url=flow["auth_uri"], flow=flow)

    def complete_sign_in(self, *, flow: Mapping[str, Any], params: Mapping[str, str]) -> Grant:
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
        cache = msal.SerializableTokenCache()
        try:
            app = self._app(cache)
            # msal pops keys from the flow; the caller's copy stays as it was.
            result = app.acquire_token_by_auth_code_flow(dict(flow), dict(params))
        except NETWORK_ERRORS as exc:
            raise SignInFailed(f"redeeming the code: {exc.__class__.__name__}", user_message=UNREACHABLE) from exc
        except ValueError as exc:
            # A state that does not match the flow, or a callback that is not an answer to it.
            raise SignInFailed(f"the callback does not match the sign-in: {exc}") from exc
        if "error" in result:
            raise _sign_in_error(result)
        accounts = app.get_accounts()
        if len(accounts) != 1:
            raise SignInFailed("the token response named no account")
        return self._grant(result, cache, accounts[0]["home_account_id"])

    def refresh(self, grant: Grant) -> Grant:
        """Redeem the refresh token for new tokens; the identity platform rotates the refresh token,
        so the returned grant must replace the old one (which will be refused from now on)."""
        # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
        cache = self._cache_of(grant)
        try:
            app = self._app(cache)
            account = self._account(app, grant)
            if account is None:
                raise AuthRevoked("the grant holds no account (disconnected)")
            # The _with_error variant tells an empty cache from a refused refresh token.
            result = app.acquire_token_silent_with_error(list(self.config.scopes), account, force_refresh=True)
        except (*NETWORK_ERRORS, ValueError) as exc:
            raise TransientError(f"refreshing: {exc.__class__.__name__}", user_message=UNREACHABLE) from exc
        if result is None:
            raise AuthRevoked("the grant holds no refresh token")
        if "error" in result:
            if result["error"] in GRANT_OVER:
                raise AuthRevoked(_description(result))
            if result["error"] in CLIENT_REFUSED:
                # Aspire's own registration (an expired client secret, say): waiting won't fix it and
                # neither will the user signing in again, so the connection is kept and says so.
                raise ProviderError(_description(result), user_message=CONFIGURATION_REFUSED)
            # Throttling or an outage: the connection is kept and the caller tries again later.
            raise TransientError(_description(result))
        return self._grant(result, cache, grant.data["home_account_id"])

    def revoke(self, grant: Grant) -> None:
        """Forget the grant locally; make no call to Microsoft.

        Microsoft has no way for an application to end its own delegated grant: there is no token
        revocation endpoint, and Graph's ``revokeSignInSessions`` signs the user out of every
        application on every device, which nobody expects from disconnecting a CRM. Removing the
        app's consent (an ``oauth2PermissionGrant``) needs directory administrator rights. So this
        removes the account's tokens from the grant's token cache (``grant.data`` is updated in
        place), so that nothing holding this grant can refresh it; the caller then deletes the
        stored grant. The last access token stays usable at Microsoft until it expires (an hour at
        most) and the refresh token until it lapses unused; an administrator can remove the app's
        consent in Microsoft Entra at any time.
        """
        try:
            cache = self._cache_of(grant)
        except AuthRevoked:
            return  # nothing left to forget
        owned = {"home_account_id": grant.data.get("home_account_id")}
        kinds = msal.TokenCache.CredentialType
        for credential in list(cache.search(kinds.REFRESH_TOKEN, query=owned)):
            cache.remove_rt(credential)
        for credential in list(cache.search(kinds.ACCESS_TOKEN, query=owned)):
            cache.remove_at(credential)
        for credential in list(cache.search(kinds.ID_TOKEN, query=owned)):
            cache.remove_idt(credential)
        for account in list(cache.search(kinds.ACCOUNT, query=owned)):
            cache.remove_account(account)
        grant.data["token_cache"] = cache.serialize()

    # -- helpers -------------------------------------------------------------------------
    def _http_cache(self) -> dict[str, Any]:
        cache: dict[str, Any] | None = getattr(self._local, "http_cache", None)
        if cache is None:
            cache = self._local.http_cache = {}
        return cache

    @staticmethod
    def _cache_of(grant: Grant) -> msal.SerializableTokenCache:
        cache = msal.SerializableTokenCache()
        serialised = grant.data.get("token_cache")
        if not isinstance(serialised, str):
            raise AuthRevoked("the grant holds no Microsoft token cache")
        try:
            cache.deserialize(serialised)
        except ValueError as exc:
            raise AuthRevoked("the grant's token cache cannot be read") from exc
        return cache

    @staticmethod
    def _account(app: msal.ConfidentialClientApplication, grant: Grant) -> dict[str, Any] | None:
        for account in app.get_accounts():
            if account.get("home_account_id") == grant.data.get("home_account_id"):
                return dict(account)
        return None

    @staticmethod
    def _grant(result: Mapping[str, Any], cache: msal.SerializableTokenCache, home_account_id: str) -> Grant:
        if "access_token" not in result:
            raise ProviderError("the token response holds no access token")
        return Grant(
            data={"token_cache": cache.serialize(), "home_account_id": home_account_id},
            access_token=result["access_token"],
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(result.get("expires_in", 0))),
            scopes=tuple(str(result.get("scope", "")).split()),
        )
