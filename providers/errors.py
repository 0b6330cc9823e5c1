"""One error hierarchy for every provider.

``permanent`` errors will not go away by retrying (revoked consent, an unsupported mailbox):
the connection records why and stops. The others are retried with backoff.
Each error carries ``user_message``: plain words an office user can act on.
"""

from __future__ import annotations


class ProviderError(Exception):
    permanent = False
    default_message = "The mail provider could not complete the request. Aspire will try again."

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail or self.default_message)
        self.detail = detail
        self.user_message = user_message or self.default_message


class TransientError(ProviderError):
    """A timeout, a dropped connection, a 5xx: try again later."""


class Throttled(TransientError):
    """The provider asked us to slow down (429, or 503 with Retry-After)."""

    default_message = "The mail provider asked Aspire to slow down; syncing will resume shortly."

    def __init__(self, detail: str = "", *, retry_after: float = 30.0, user_message: str | None = None) -> None:
        super().__init__(detail, user_message=user_message)
        self.retry_after = retry_after


class AccessTokenRejected(TransientError):
    """The provider refused the access token (401): expired early, or the user's sessions were
    revoked. The caller refreshes the grant and tries again; only if that refresh fails is the grant
    gone (``AuthRevoked``). Transient, so a caller that does not know this class still retries."""

    default_message = "Aspire is renewing its access to this mailbox; syncing will resume shortly."


class SendOutcomeUnknown(ProviderError):
    """A send request may have reached the provider but no answer came back (a read timeout, a
    connection dropped after the request left), so the message may or may not have gone out.

    Not transient on purpose: sending again could send twice. The caller looks for the message in
    the mailbox by its Message-ID (``MailProvider.find_sent``) before deciding to send again."""

    default_message = "Aspire could not confirm that the message was sent. It will check before trying again."


class AuthRevoked(ProviderError):
    """The grant is gone (``invalid_grant``: revoked, expired, password changed). Needs sign-in."""

    permanent = True
    default_message = "Aspire's access to this mailbox has ended. Please sign in again to keep syncing."


class SignInFailed(ProviderError):
    """The interactive sign-in did not produce a usable grant."""

    permanent = True
    default_message = "The sign-in did not complete. Please try again."


class SignInCancelled(SignInFailed):
    default_message = "The sign-in was cancelled, so nothing was connected."


class UnsupportedMailbox(ProviderError):
    """Shared mailboxes, rooms, groups, distribution lists and aliases cannot be synced."""

    permanent = True
    default_message = "This kind of mailbox can't be synced. Please connect your own personal mailbox."


class SyncStateExpired(ProviderError):
    """A delta link, history id or sync token is no longer valid: a full resync is needed."""


class Conflict(ProviderError):
    """The item changed at the provider since we read it (a stale etag, 409/412)."""


class NotFound(ProviderError):
    """The item or folder no longer exists at the provider."""
