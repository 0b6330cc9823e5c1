"""The interface every provider adapter implements, and the values that cross it."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ProviderError

if TYPE_CHECKING:
    from .calendar import CalendarProvider


class MailboxKind(enum.StrEnum):
    USER = "user"
    SHARED = "shared"
    ROOM = "room"
    EQUIPMENT = "equipment"
    GROUP = "group"  # distribution lists, mail-enabled groups, Google Groups
    ALIAS = "alias"
    OTHER = "other"


@dataclass(frozen=True)
class AuthRequest:
    """Where to send the user's browser to sign in, and what to keep server-side until the
    provider sends them back (the PKCE verifier and the like: secrets, never sent to the browser)."""

    url: str
    flow: dict[str, Any]


@dataclass(frozen=True)
class Grant:
    """A connection's authorisation. ``data`` is provider-specific (Microsoft: the msal token cache;
    Google: the refresh token and scopes) and holds secrets: callers keep it encrypted."""

    data: dict[str, Any]
    access_token: str
    expires_at: dt.datetime
    scopes: tuple[str, ...] = ()

    def expires_within(self, seconds: float) -> bool:
        return self.expires_at - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=seconds)

    def __repr__(self) -> str:  # never print a token
        return f"Grant(expires_at={self.expires_at.isoformat()}, scopes={self.scopes!r})"


@dataclass(frozen=True)
class MailboxIdentity:
    """Who signed in: the mailbox's primary address as the provider knows it."""

    address: str
    display_name: str
    kind: MailboxKind
    provider_account_id: str
    aliases: tuple[str, ...] = field(default=())


class SignIn(Protocol):
    """Sign-in and the grant, for one provider. Methods raise ``providers.errors`` only."""

    def begin_sign_in(self, *, state: str, login_hint: str = "") -> AuthRequest:
        """Start the authorization-code flow with PKCE; ``state`` is the caller's, echoed back."""
        ...

    def complete_sign_in(self, *, flow: Mapping[str, Any], params: Mapping[str, str]) -> Grant:
        """Redeem the code in the callback's query ``params``. Raises SignInCancelled when the user
        cancelled, SignInFailed for any other failure (the state is checked by the caller first)."""
        ...

    def refresh(self, grant: Grant) -> Grant:
        """A fresh access token (and the rotated refresh token, where the provider rotates).
        Raises AuthRevoked when the grant is no longer valid."""
        ...

    def revoke(self, grant: Grant) -> None:
        """End the grant at the provider (best effort: an already-dead grant is not an error)."""
        ...


class Provider(SignIn, Protocol):
    """One provider (``kind`` "microsoft" or "google"). Methods raise ``providers.errors`` only."""

    kind: str
    label: str
    scopes: tuple[str, ...]

    def identify(self, grant: Grant) -> MailboxIdentity:
        """Who the grant belongs to, and what kind of mailbox it is."""
        ...


class SignsInThroughAuth:
    """An adapter's sign-in and grant calls, each handed to its ``auth`` (the provider package's
    auth module does the work; the adapter only holds it)."""

    auth: SignIn

    def begin_sign_in(self, *, state: str, login_hint: str = "") -> AuthRequest:
        return self.auth.begin_sign_in(state=state, login_hint=login_hint)

    def complete_sign_in(self, *, flow: Mapping[str, Any], params: Mapping[str, str]) -> Grant:
        return self.auth.complete_sign_in(flow=flow, params=params)

    def refresh(self, grant: Grant) -> Grant:
        return self.auth.refresh(grant)

    def revoke(self, grant: Grant) -> None:
        self.auth.revoke(grant)


@dataclass(frozen=True)
class MessageRef:
    """A message in a folder, as listed: enough to fetch and move it."""

    id: str
    internet_message_id: str = ""


@dataclass(frozen=True)
class MessagePage:
    messages: tuple[MessageRef, ...]
    next_page_token: str | None = None


# Reference: https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4 (msg-id)
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str) -> tuple[str, ...]:
    """The ``<...>`` ids of a Message-ID, In-Reply-To or References header."""
    return tuple(MESSAGE_ID.findall(value))


@dataclass(frozen=True)
class MailChange:
    """A message that arrived in a watched folder (Inbox, Sent), with what tells which conversation
    it belongs to: the provider's thread (Graph ``conversationId``, Gmail ``threadId``) and its
    Message-ID, In-Reply-To and References headers (``<...>`` each)."""

    id: str
    thread_id: str = ""
    internet_message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()

    @property
    def replies_to(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.references, self.in_reply_to) if self.in_reply_to else self.references))


@dataclass(frozen=True)
class MailChanges:
    """What arrived since a cursor, and the cursor to ask from next time. ``complete`` is False when
    a bounded listing stopped early: ``cursor`` then continues it."""

    added: tuple[MailChange, ...]
    cursor: str
    requests: int = 0
    complete: bool = True


@dataclass(frozen=True)
class PushChannel:
    """A provider's promise to tell us when a mail folder or a calendar changes, until ``expires_at``:
    a Graph subscription, a Gmail watch or a Google Calendar channel.

    ``resource_id`` is Google's id of the watched resource (a channel is stopped with both ids);
    ``watched`` the folder id the channel was asked for (empty for a calendar); ``lifecycle`` whether
    the provider sends lifecycle notifications for it (Graph only, and only when asked at creation)."""

    id: str
    expires_at: dt.datetime
    resource_id: str = ""
    watched: str = ""
    lifecycle: bool = False


class MailProvider(Provider, Protocol):
    """What mail sync needs from a provider (folders on Microsoft 365, labels on Gmail), and the
    provider's calendar half (``calendar``)."""

    @property
    def calendar(self) -> CalendarProvider: ...

    def ensure_folders(self, grant: Grant, names: tuple[str, ...]) -> dict[str, str]:
        """The id of each named top-level folder / label, creating the missing ones."""
        ...

    def list_folder(self, grant: Grant, folder_id: str, *, page_token: str | None = None,
                    page_size: int = 50) -> MessagePage:
        """One page of the messages now in a folder (one provider request)."""
        ...

    def fetch_mime(self, grant: Grant, message_id: str) -> bytes:
        """The message's raw RFC 5322 bytes. Raises NotFound if it has gone."""
        ...

    def move_messages(self, grant: Grant, message_ids: tuple[str, ...], *, source_folder_id: str,
                      target_folder_id: str) -> dict[str, ProviderError | None]:
        """Move messages in as few requests as the provider allows (Graph $batch of 20, Gmail
        batchModify); per message, None when moved (or already gone from the source)."""
        ...

    #: The folders whose new mail following conversations reads, each with a cursor of its own
    #: (Graph: Inbox and Sent Items, a delta link each; Gmail: the mailbox's history, one id).
    follow_folders: tuple[str, ...]

    def list_changes(self, grant: Grant, folder: str, *, cursor: str, since: dt.datetime,
                     max_pages: int) -> MailChanges:
        """Messages added to a ``follow_folders`` folder since ``cursor``, in at most ``max_pages``
        requests of listing (an idle folder: one). An empty cursor starts with what the folder
        holds, so mail that came in just before is not skipped: Graph lists the folder in a new
        delta round, Gmail its Inbox and Sent since ``since`` (as ``relist``). Raises
        ``SyncStateExpired`` when the cursor is no longer valid; then ``relist`` lists what
        arrived since ``since`` instead."""
        ...

    def relist(self, grant: Grant, folder: str, *, since: dt.datetime, max_pages: int) -> MailChanges:
        """After an expired cursor: the folder's messages since ``since`` (bounded by ``max_pages``),
        and a new cursor."""
        ...

    def send_mime(self, grant: Grant, mime: bytes) -> str:
        """Send a complete RFC 5322 message through the mailbox so it lands in Sent; returns the
        provider's id of the sent message where the provider gives one. Raises
        ``SendOutcomeUnknown`` when the request may have reached the provider but no answer came
        back: the caller then asks ``find_sent`` before sending again."""
        ...

    def find_sent(self, grant: Grant, message_id: str) -> bool:
        """Whether the mailbox holds a message with this Message-ID header (``<...>``): how a
        caller learns whether a send whose outcome is unknown went out."""
        ...

    def watch_folder(self, grant: Grant, folder_id: str, *, notification_url: str, lifecycle_url: str,
                     client_state: str, topic: str, renew: PushChannel | None = None) -> PushChannel:
        """Ask for notifications when mail arrives in a folder: a Graph subscription whose
        notifications carry ``client_state`` (lifecycle notifications go to ``lifecycle_url``), or a
        Gmail watch on the Pub/Sub ``topic``. ``renew`` is the current channel: extended where the
        provider allows it, replaced otherwise (the old one is stopped once the new one exists)."""
        ...

    def stop_watching(self, grant: Grant, channel: PushChannel) -> None:
        """End a channel; one already gone is not an error."""
        ...
