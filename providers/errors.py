"""One error hierarchy for every provider, on one axis.

Every caller asks the same two questions of a provider error, and the error answers both:

- ``permanent``: can waiting help? Fixed by the class. A permanent error (a refused request, revoked
  consent, an unsupported mailbox) is recorded and the work stops until something changes; any
  other is tried again later. The run record ("retrying" or "failed"), the status panel and the
  tasks' retry policy all read this flag, never the class.
- ``retry_after``: how many seconds the provider asked us to wait (its ``Retry-After``), or None when
  it did not say; then the caller backs off on its own (``providers.http.retry_delay``).

Each error also carries ``user_message``: plain words an office user can act on.
"""

from __future__ import annotations


class ProviderError(Exception):
    """The provider refused the request, and sending it again as it is will not help (a 4xx that
    is not one of the cases below: a request we got wrong, a configuration the provider rejects)."""

    permanent = True
    default_message = (
        "Your mail provider refused a request from Aspire, so this sync stopped. Aspire tries again at the "
        "next hourly sync; if this message stays, ask your administrator to look at the connection."
    )

    def __init__(self, detail: str = "", *, user_message: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail or self.default_message)
        self.detail = detail
        self.user_message = user_message or self.default_message
        self.retry_after = retry_after


class TransientError(ProviderError):
    """A timeout, a dropped connection, a 5xx, an answer not in the provider's documented shape:
    waiting can help."""

    permanent = False
    default_message = "The mail provider could not complete the request. Aspire will try again shortly."


class Throttled(TransientError):
    """The provider asked us to slow down (429; 503 with Retry-After; Google's rate-limit 403s)."""

    default_message = "The mail provider asked Aspire to slow down; syncing will resume shortly."


class AccessTokenRejected(TransientError):
    """The provider refused the access token (401): expired early, or the user's sessions were
    revoked. The run lifecycle renews the grant once and goes again (``accounts.runs``); only if
    that renewal is refused is the grant gone (``AuthRevoked``)."""

    default_message = "Aspire is renewing its access to this mailbox; syncing will resume shortly."


class SendOutcomeUnknown(ProviderError):
    """A send may have reached the provider, but its answer does not prove either way whether the
    message went out: no answer came back (a read timeout, a connection dropped after the request
    left), or a server error (5xx) came from a gateway that may have passed the request on.

    Waiting helps, but sending again blindly could send twice: the caller first looks for the
    message in the mailbox by its Message-ID (``MailProvider.find_sent``)."""

    permanent = False
    default_message = "Aspire could not confirm that the message was sent. It will check before trying again."


class AuthRevoked(ProviderError):
    """The grant is gone (``invalid_grant``: revoked, expired, password changed). Needs sign-in."""

    default_message = "Aspire's access to this mailbox has ended. Please sign in again to keep syncing."


class SignInFailed(ProviderError):
    """The interactive sign-in did not produce a usable grant."""

    default_message = "The sign-in did not complete. Please try again."


class SignInCancelled(SignInFailed):
    default_message = "The sign-in was cancelled, so nothing was connected."


class UnsupportedMailbox(ProviderError):
    """Shared mailboxes, rooms, groups, distribution lists and aliases cannot be synced."""

    default_message = "This kind of mailbox can't be synced. Please connect your own personal mailbox."


class SyncStateExpired(ProviderError):
    """A delta link, history id or sync token is no longer valid: a full listing is needed (the
    caller does it at once; if one escapes, the next run starts from a full listing)."""

    permanent = False


class Conflict(ProviderError):
    """The item changed at the provider since we read it (a stale etag, 409/412): the same write
    again would be refused again."""


class NotFound(ProviderError):
    """The item or folder no longer exists at the provider."""
