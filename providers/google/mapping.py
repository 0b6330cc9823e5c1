"""Google's payloads to and from the provider value types.

Mailbox kinds: on Google only a user account can sign in. Google Groups, calendar resources and
the like have no password and are refused on Google's own sign-in page; Workspace has no shared
mailboxes (delegation signs a user into someone else's mailbox through the web UI, not OAuth). An
alternate address (alias) signs in the account that owns it, so the grant is that owner's: the
identity then carries the owner's primary address and lists the alias among ``aliases``, and the
caller, comparing with the address the user typed, can refuse it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.parser
import email.policy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import requests
from google.auth import jwt
from google.oauth2.credentials import Credentials

from providers.base import Grant, MailboxIdentity, MailboxKind, MailChange, MessagePage, MessageRef, message_ids
from providers.errors import ProviderError, SignInFailed

SETUP_PROBLEM = "Aspire's connection to Google is not set up correctly. Please tell your administrator."
SIGN_IN_CANCELLED = ("Google did not give Aspire access, so nothing changed: the sign-in was cancelled or declined "
                     "at Google. Only a person's own Google account can be connected; Google Groups can't sign in.")
SIGN_IN_ERRORS = {
    "admin_policy_enforced": "Your Google Workspace administrator does not allow Aspire to use this account. "
                             "Ask them to allow Aspire, then connect again.",
    "org_internal": "This Google sign-in only accepts accounts of another organisation. "
                    "Please tell your administrator.",
    "invalid_grant": "The sign-in took too long or was already used. Please connect again.",
    "server_error": "Google had a problem finishing the sign-in. Please try again in a minute.",
    "temporarily_unavailable": "Google had a problem finishing the sign-in. Please try again in a minute.",
    "invalid_client": SETUP_PROBLEM,
    "unauthorized_client": SETUP_PROBLEM,
    "deleted_client": SETUP_PROBLEM,
    "redirect_uri_mismatch": SETUP_PROBLEM,
    "invalid_request": SETUP_PROBLEM,
    "invalid_scope": SETUP_PROBLEM,
}


def sign_in_error_message(code: str) -> str:
    # Reference: https://developers.google.com/identity/protocols/oauth2/web-server#authorization-errors
    return SIGN_IN_ERRORS.get(code, "Google could not complete the sign-in. Please try again.")


def grant_from_token(token: Mapping[str, Any], *, token_uri: str, requested_scopes: Sequence[str]) -> Grant:
    """The grant from a code exchange's token response; refuses one that cannot keep syncing."""
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise SignInFailed("no refresh token: offline access was not granted", user_message=(
            "Google did not give Aspire lasting access to this mailbox, so it could not keep syncing. "
            "Please connect again and accept the consent screen."))
    granted = scope_list(token.get("scope")) or list(requested_scopes)
    missing = [scope for scope in requested_scopes if scope not in granted]
    if missing:
        # Google's consent screen lets the user untick single permissions.
        raise SignInFailed(f"scopes not granted: {' '.join(missing)}", user_message=(
            "Aspire needs every permission on Google's consent screen to sync your mail and calendar. "
            "Please connect again and leave all of them ticked."))
    claims = id_token_claims(token.get("id_token"))
    # From expires_in, as google-auth computes it on refresh (oauthlib's expires_at is rounded).
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(token.get("expires_in", 3600)))
    return Grant(
        data={
            "refresh_token": refresh_token,
            "token_uri": token_uri,
            "scopes": granted,
            "account_id": str(claims.get("sub", "")),
            "email": str(claims.get("email", "")),
            "name": str(claims.get("name", "")),
        },
        access_token=str(token["access_token"]),
        expires_at=expires_at,
        scopes=tuple(granted),
    )


def refreshed_grant(grant: Grant, credentials: Credentials) -> Grant:
    # Google keeps the refresh token by default; should a response carry a new one, google-auth
    # hands it over in credentials.refresh_token and it replaces the old.
    expiry = credentials.expiry or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return Grant(
        data={**grant.data, "refresh_token": credentials.refresh_token or grant.data["refresh_token"]},
        access_token=str(credentials.token),
        expires_at=expiry.replace(tzinfo=dt.UTC),  # google-auth's expiry is naive UTC
        scopes=grant.scopes,
    )


def scope_list(scope: str | Iterable[str] | None) -> list[str]:
    if not scope:
        return []
    return scope.split() if isinstance(scope, str) else list(scope)


def id_token_claims(id_token: str | None) -> dict[str, Any]:
    if not id_token:
        return {}
    # Not verified on purpose: it came straight from the token endpoint over TLS, which OpenID
    # Connect accepts in place of checking the signature.
    # Reference: https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
    try:
        return dict(jwt.decode(id_token, verify=False))
    except ValueError:
        return {}  # the grant works without it: identify falls back to the Gmail profile


def oauth_error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def identity(profile: Mapping[str, Any], send_as: Sequence[Mapping[str, Any]], grant: Grant) -> MailboxIdentity:
    address = str(profile["emailAddress"])
    primary = next((entry for entry in send_as if entry.get("isPrimary")), {})
    aliases = tuple(
        str(entry["sendAsEmail"]) for entry in send_as
        if not entry.get("isPrimary") and str(entry.get("sendAsEmail", "")).lower() != address.lower()
    )
    return MailboxIdentity(
        address=address,
        display_name=str(primary.get("displayName") or grant.data.get("name") or ""),
        kind=MailboxKind.USER,
        provider_account_id=str(grant.data.get("account_id") or address),
        aliases=aliases,
    )


def mail_change(message: Mapping[str, Any]) -> MailChange:
    """A message read with format=metadata: its threadId and thread headers."""
    headers = {str(h.get("name", "")).lower(): str(h.get("value", ""))
               for h in (message.get("payload") or {}).get("headers", ()) if isinstance(h, Mapping)}
    return MailChange(
        id=str(message["id"]), thread_id=str(message.get("threadId") or ""),
        internet_message_id=next(iter(message_ids(headers.get("message-id", ""))), ""),
        in_reply_to=next(iter(message_ids(headers.get("in-reply-to", ""))), ""),
        references=message_ids(headers.get("references", "")),
    )


def message_page(response: Mapping[str, Any]) -> MessagePage:
    return MessagePage(
        messages=tuple(MessageRef(id=str(message["id"])) for message in response.get("messages", [])),
        next_page_token=response.get("nextPageToken") or None,
    )


def decode_raw(raw: str) -> bytes:
    """Gmail's ``raw``: base64url, padded or not."""
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except binascii.Error as error:
        raise ProviderError("Gmail returned a raw message that is not base64url") from error


def encode_raw(mime: bytes) -> str:
    return base64.urlsafe_b64encode(mime).decode("ascii")


def in_reply_to(mime: bytes) -> str:
    """The Message-ID a message answers (its In-Reply-To header), or ""."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(mime)
    value = str(headers.get("In-Reply-To", "") or "")
    return " ".join(value.split())
