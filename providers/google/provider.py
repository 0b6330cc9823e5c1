"""``GoogleProvider``: Google Workspace and Gmail behind ``providers.base.MailProvider``."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator
from typing import Any

from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from providers.base import Grant, MailboxIdentity, MailChange, MailChanges, MessagePage, PushChannel, SignsInThroughAuth
from providers.calendar import CalendarProvider
from providers.errors import NotFound, ProviderError, SendOutcomeUnknown, SyncStateExpired
from providers.http import PerThread

from . import gmail, mapping
from .auth import GoogleAuth, GoogleConfig, new_session
from .quota import UserQuota
from .transport import (
    NETWORK_ERRORS,
    NOTHING_SENT_ERRORS,
    api_service,
    from_http_error,
    google_errors,
    new_batch,
)


class GoogleProvider(SignsInThroughAuth):
    kind = "google"
    label = "Google Workspace / Gmail"

    def __init__(self, config: GoogleConfig) -> None:
        self.config = config
        self.scopes = config.scopes
        self.auth: GoogleAuth = GoogleAuth(config, PerThread(lambda: new_session(config)))
        self.quota = UserQuota()

    @functools.cached_property
    def calendar(self) -> CalendarProvider:
        """The calendar half of this adapter (same credentials, same grants)."""
        from .calendar import GoogleCalendar  # it builds on this module

        return GoogleCalendar(self)

    # -- clients for a grant (sign-in, refresh and revoke: SignsInThroughAuth) ------------

    @contextlib.contextmanager
    def api(self, grant: Grant, api: str = "gmail", *, single_attempt: bool = False) -> Iterator[Any]:
        """A Gmail (or ``"calendar"``) client for the grant; errors inside come out as
        ``providers.errors``. An expired access token is renewed on the way, but that renewal is
        not handed back: callers keep grants fresh with ``fresh`` and store the result."""
        with google_errors(), api_service(api, self.auth.credentials(grant), api_endpoint=self.config.api_endpoint,
                                          ca_bundle=self.config.ca_bundle, timeout=self.config.timeout,
                                          single_attempt=single_attempt) as service:
            yield service

    def new_batch(self, service: Any, api: str = "gmail", callback: Any = None) -> BatchHttpRequest:
        """A batch of calls on a client from ``api``, sent to the configured host's batch URL.
        ``callback(request_id, response, exception)`` gets each part's result; run it with
        ``batch.execute()`` inside the ``api`` block."""
        return new_batch(service, api, self.config.api_endpoint, callback)

    def identify(self, grant: Grant) -> MailboxIdentity:
        with self.api(grant) as client:
            profile = gmail.get_profile(client)
            send_as = gmail.list_send_as(client)
        return mapping.identity(profile, send_as, grant)

    # -- mail ----------------------------------------------------------------------------

    def ensure_folders(self, grant: Grant, names: tuple[str, ...]) -> dict[str, str]:
        with self.api(grant) as client:
            return gmail.ensure_labels(client, names)

    def list_folder(self, grant: Grant, folder_id: str, *, page_token: str | None = None,
                    page_size: int = 50) -> MessagePage:
        self.quota.spend(_quota_user(grant), "messages.list")
        with self.api(grant) as client:
            return gmail.list_messages(client, folder_id, page_token=page_token, page_size=page_size)

    # Gmail's history is the whole mailbox's: one cursor, one request when idle.
    follow_folders: tuple[str, ...] = ("history",)
    # The labels whose new messages following conversations reads (system label ids).
    # Reference: https://developers.google.com/workspace/gmail/api/guides/labels#manage_labels_on_messages_threads
    FOLLOWED_LABELS = ("INBOX", "SENT")

    def list_changes(self, grant: Grant, folder: str, *, cursor: str, since: dt.datetime,
                     max_pages: int) -> MailChanges:
        """Messages added to the Inbox or Sent since the history id ``cursor``. An empty cursor
        (following's first read) lists the Inbox and Sent since ``since`` and follows on from the
        profile's history id, as ``relist`` does: starting from the history id alone would skip
        mail that came in moments before it was read, such as a reply to the email this same run
        just captured. Gmail keeps history for about a week: an older id answers 404, raised as
        ``SyncStateExpired``. Each added message is then read for its thread headers
        (format=metadata, a small request each)."""
        if not cursor:
            return self.relist(grant, folder, since=since, max_pages=max_pages)
        with self.api(grant) as client:
            ids: list[str] = []
            page_token: str | None = None
            latest, requests = cursor, 0
            for _ in range(max_pages):
                self.quota.spend(_quota_user(grant), "history.list")
                try:
                    requests += 1
                    with google_errors():
                        answer = gmail.history_added(client, cursor, page_token=page_token)
                except NotFound as exc:
                    raise SyncStateExpired("the history id is no longer kept") from exc
                latest = str(answer.get("historyId") or latest)
                for record in answer.get("history", ()):
                    for added in record.get("messagesAdded", ()):
                        message = added.get("message") or {}
                        if set(message.get("labelIds") or ()) & set(self.FOLLOWED_LABELS):
                            ids.append(str(message["id"]))
                page_token = answer.get("nextPageToken") or None
                if page_token is None:
                    break
            changes, more = self._thread_headers(grant, client, list(dict.fromkeys(ids)))
        complete = page_token is None
        return MailChanges(changes, latest if complete else cursor, requests=requests + more, complete=complete)

    def relist(self, grant: Grant, folder: str, *, since: dt.datetime, max_pages: int) -> MailChanges:
        """The Inbox's and Sent's messages since ``since`` (newest first, at most ``max_pages`` pages),
        and the history id to follow from."""
        with self.api(grant) as client:
            start = str(gmail.get_profile(client)["historyId"])
            ids: list[str] = []
            requests = 1
            for label in ("inbox", "sent"):
                page_token: str | None = None
                for _ in range(max_pages):
                    self.quota.spend(_quota_user(grant), "messages.list")
                    requests += 1
                    answer = gmail.search_ids(client, f"in:{label} after:{int(since.timestamp())}",
                                              page_token=page_token, page_size=100)
                    ids.extend(str(m["id"]) for m in answer.get("messages", ()))
                    page_token = answer.get("nextPageToken") or None
                    if page_token is None:
                        break
            changes, more = self._thread_headers(grant, client, ids)
        return MailChanges(changes, start, requests=requests + more)

    def _thread_headers(self, grant: Grant, client: Any, ids: list[str]) -> tuple[tuple[MailChange, ...], int]:
        changes = []
        for message_id in dict.fromkeys(ids):
            self.quota.spend(_quota_user(grant), "messages.get")
            try:
                with google_errors():
                    changes.append(mapping.mail_change(gmail.get_thread_headers(client, message_id)))
            except NotFound:
                continue  # deleted since it arrived
        return tuple(changes), len(ids)

    def fetch_mime(self, grant: Grant, message_id: str) -> bytes:
        self.quota.spend(_quota_user(grant), "messages.get")
        with self.api(grant) as client:
            return gmail.get_raw(client, message_id)

    def move_messages(self, grant: Grant, message_ids: tuple[str, ...], *, source_folder_id: str,
                      target_folder_id: str) -> dict[str, ProviderError | None]:
        """Moves by relabelling, up to 1,000 messages a request. When a request fails, its
        messages and all later ones get that error: a throttled or revoked mailbox would refuse
        the rest too, and the caller retries them together."""
        results: dict[str, ProviderError | None] = {}
        ids = list(dict.fromkeys(message_ids))
        with self.api(grant) as client:
            for start in range(0, len(ids), gmail.BATCH_MODIFY_LIMIT):
                chunk = ids[start:start + gmail.BATCH_MODIFY_LIMIT]
                try:
                    self.quota.spend(_quota_user(grant), "messages.batchModify")
                    with google_errors():
                        gmail.batch_modify(client, chunk, add=[target_folder_id], remove=[source_folder_id])
                except ProviderError as error:
                    results.update(dict.fromkeys(ids[start:], error))
                    break
                results.update(dict.fromkeys(chunk))
        return results

    def send_mime(self, grant: Grant, mime: bytes) -> str:
        """Send a complete RFC 5322 message; Gmail labels it SENT. Returns the new message's id.

        A failure after the request may have reached Gmail (a timeout, a connection closed before
        or during the answer) raises ``SendOutcomeUnknown``, never a transient error, so the
        message is not sent twice; failures that prove nothing left (no such host, a refused
        connection, a failed token refresh) stay transient.

        A reply (an ``In-Reply-To`` header) is sent into the thread of the message it answers, when
        the mailbox holds that message: Gmail threads a sent message only when asked by threadId.
        """
        thread_id = self._thread_answered(grant, mime)
        with self.api(grant, single_attempt=True) as client:
            try:
                return gmail.send(client, mime, thread_id=thread_id)
            except HttpError as exc:
                # A 5xx may come from a front end that passed the message on: ambiguous.
                raise from_http_error(exc, may_repeat=False) from exc
            except NOTHING_SENT_ERRORS:
                raise
            except NETWORK_ERRORS as exc:
                raise SendOutcomeUnknown(f"messages.send: {type(exc).__name__}") from exc

    def watch_folder(self, grant: Grant, folder_id: str, *, notification_url: str = "", lifecycle_url: str = "",
                     client_state: str = "", topic: str = "", renew: PushChannel | None = None) -> PushChannel:
        """Pub/Sub pushes for changes to the label. Gmail has one watch per mailbox: watching again
        renews or replaces it (Google asks for that at least every seven days). Pushes are
        authenticated by Pub/Sub's signed token, not by a secret of ours."""
        # One watch per mailbox: ``folder_id`` may name several labels, comma-separated (the
        # Aspire label, and Inbox and Sent when following conversations).
        with self.api(grant) as client:
            answer = gmail.watch(client, folder_id.split(","), topic)
        expires = dt.datetime.fromtimestamp(int(answer["expiration"]) / 1000, dt.UTC)
        return PushChannel(id=f"gmail-watch:{answer['historyId']}", expires_at=expires, watched=folder_id)

    def stop_watching(self, grant: Grant, channel: PushChannel) -> None:
        with self.api(grant) as client:
            gmail.stop(client)

    def _thread_answered(self, grant: Grant, mime: bytes) -> str:
        # Asked before the send, so a failure here proves nothing was sent.
        answered = mapping.in_reply_to(mime)
        if not answered:
            return ""
        with self.api(grant) as client, google_errors():
            return gmail.thread_of_message_id(client, answered)

    def find_sent(self, grant: Grant, message_id: str) -> bool:
        """Whether any message in the mailbox (Trash and Spam included) has this Message-ID.
        Aspire never creates drafts, so a match means the message was sent."""
        with self.api(grant) as client:
            return gmail.has_message_id(client, message_id)


def _quota_user(grant: Grant) -> str:
    """Whose Gmail quota a call spends: Google's account id (``sub``), stable across renames."""
    return str(grant.data.get("account_id") or grant.data.get("email") or "")
