"""``MicrosoftProvider``: Microsoft 365 mail (and sign-in) behind ``providers.base.MailProvider``."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from ..base import Grant, MailboxIdentity, MailChange, MailChanges, MessagePage, PushChannel, SignsInThroughAuth
from ..calendar import CalendarProvider
from ..errors import Conflict, NotFound, ProviderError, TransientError
from ..http import PerThread
from . import subscriptions
from .auth import MicrosoftAuth
from .config import MicrosoftConfig
from .graph import (
    IMMUTABLE_IDS,
    ConcurrencyGate,
    GraphClient,
    Slots,
    build_session,
    error_from_response,
    no_slots,
    segment,
)
from .mapping import folder_ids_by_name, identity_from, mail_change, message_page
from .outgoing import UPLOAD_CHUNK_BYTES, Attachment, fits_one_request, split_attachments


class MicrosoftProvider(SignsInThroughAuth):
    """Microsoft 365 through msal and Microsoft Graph v1.0. Every message id it hands out or takes is
    an immutable id, so ids stay valid when mail moves between folders.

    One instance per process is enough: it holds one HTTP session (connection pool) per thread and
    no tokens.
    """

    kind = "microsoft"
    label = "Microsoft 365"

    def __init__(self, config: MicrosoftConfig, *, concurrency: ConcurrencyGate | None = None) -> None:
        self.config = config
        # Graph's concurrent requests per mailbox, shared by everything of this application.
        self.concurrency = concurrency
        self.scopes = config.scopes
        self.sessions = PerThread(lambda: build_session(ca_bundle=config.ca_bundle, timeout=config.timeout))
        self.auth: MicrosoftAuth = MicrosoftAuth(config, self.sessions)

    @property
    def session(self) -> requests.Session:
        """This thread's session, shared by msal and the Graph client."""
        return self.sessions.get()

    def close(self) -> None:
        for session in self.sessions.all():
            session.close()

    @functools.cached_property
    def calendar(self) -> CalendarProvider:
        """The calendar half of this adapter (same session, same grants)."""
        from .calendar import MicrosoftCalendar  # it builds on this module

        return MicrosoftCalendar(self)

    # -- the grant's mailbox (sign-in, refresh and revoke: SignsInThroughAuth) ------------
    def identify(self, grant: Grant) -> MailboxIdentity:
        graph = self._graph(grant)
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-get
        me = graph.get_json("/me", {"$select": "id,displayName,mail,userPrincipalName,proxyAddresses"})
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings
        mailbox_settings = graph.get_json("/me/mailboxSettings", {"$select": "userPurpose"})
        return identity_from(me, mailbox_settings)

    # -- mail ----------------------------------------------------------------------------
    def ensure_folders(self, grant: Grant, names: tuple[str, ...]) -> dict[str, str]:
        """Top-level folders by display name (case-insensitive, as Outlook compares them), creating
        the missing ones. Safe to run concurrently: a lost creation race re-reads the folders."""
        graph = self._graph(grant)
        existing = self._top_level_folders(graph)
        for name in names:
            key = name.casefold()
            if key in existing:
                continue
            try:
                # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-mailfolders
                created = graph.post_json("/me/mailFolders", {"displayName": name})
            except Conflict:
                # ErrorFolderExists: another worker created it since we listed.
                existing = self._top_level_folders(graph)
                if key not in existing:
                    raise
            else:
                existing[key] = str(created["id"])
        return {name: existing[name.casefold()] for name in names}

    def _top_level_folders(self, graph: GraphClient) -> dict[str, str]:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders
        # Hidden folders too: creating a folder whose name a hidden one holds would fail forever.
        return folder_ids_by_name(graph.pages(
            "/me/mailFolders", {"$select": "id,displayName", "$top": 100, "includeHiddenFolders": "true"}
        ))

    def list_folder(self, grant: Grant, folder_id: str, *, page_token: str | None = None,
                    page_size: int = 50) -> MessagePage:
        """One page of the folder, newest first, in exactly one request; ``page_token`` is Graph's
        ``@odata.nextLink``. Pages are offsets into the folder, so a caller that moves messages out
        of it should start again from the first page rather than follow the token."""
        graph = self._graph(grant)
        if page_token:
            return message_page(graph.get_json(page_token))
        # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages
        return message_page(graph.get_json(
            f"/me/mailFolders/{segment(folder_id)}/messages",
            {"$select": "id,internetMessageId", "$top": page_size},
        ))

    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailfolder (well-known folder names)
    follow_folders: tuple[str, ...] = ("inbox", "sentitems")
    # What a followed message is recognised by. The headers come only when $select names them.
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/message (internetMessageHeaders)
    CHANGE_FIELDS = "id,internetMessageId,conversationId,internetMessageHeaders"
    CHANGE_PAGE_SIZE = 100

    def list_changes(self, grant: Grant, folder: str, *, cursor: str, since: dt.datetime,
                     max_pages: int) -> MailChanges:
        """A folder's delta: ``cursor`` is the delta link of the last round (or the next link of a
        round cut short). An empty cursor starts a round over what the folder holds; its messages
        older than ``since`` are the caller's to leave out. An expired link (410
        SyncStateNotFound) raises ``SyncStateExpired``."""
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-delta
        # Reference: https://learn.microsoft.com/en-us/graph/delta-query-messages
        graph = self._graph(grant)
        link = cursor or f"/me/mailFolders/{segment(folder)}/messages/delta"
        params: dict[str, str | int] | None = None if cursor else {"$select": self.CHANGE_FIELDS}
        added: list[MailChange] = []
        for page in range(1, max_pages + 1):
            # Reference: https://learn.microsoft.com/en-us/graph/delta-query-messages (odata.maxpagesize)
            body = graph._json(graph.request("GET", link, params=params, headers={
                "Prefer": f"{IMMUTABLE_IDS}, odata.maxpagesize={self.CHANGE_PAGE_SIZE}"}))
            params = None
            added.extend(mail_change(item) for item in body.get("value", []) if "@removed" not in item)
            if body.get("@odata.deltaLink"):
                return MailChanges(tuple(added), str(body["@odata.deltaLink"]), requests=page)
            link = str(body.get("@odata.nextLink") or "")
            if not link:
                break
        return MailChanges(tuple(added), link, requests=max_pages, complete=False)

    def relist(self, grant: Grant, folder: str, *, since: dt.datetime, max_pages: int) -> MailChanges:
        # A new delta round lists the folder again; what is already in Aspire is recognised there.
        return self.list_changes(grant, folder, cursor="", since=since, max_pages=max_pages)

    def fetch_mime(self, grant: Grant, message_id: str) -> bytes:
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-get-mime-message
        return self._graph(grant).download(f"/me/messages/{segment(message_id)}/$value")

    # Graph sends the steps of a batch to the mailbox at once, and each counts against its limit
    # of 4 concurrent requests (a fifth step is answered 429): batches of 3 moves stay under it
    # with a slot to spare for anything else on the mailbox, such as a send.
    # Reference: https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
    # Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
    MOVE_BATCH_STEPS = 3

    def move_messages(self, grant: Grant, message_ids: tuple[str, ...], *, source_folder_id: str,
                      target_folder_id: str) -> dict[str, ProviderError | None]:
        """Move in ``$batch`` requests of MOVE_BATCH_STEPS. Per message: None when moved, or when
        it is already gone (404); else the error of its step (``Throttled`` for a throttled step,
        with the Retry-After it came with: retry those after it).
        A target folder that no longer exists raises ``NotFound`` (the caller ensures the folders
        again).

        Graph moves by message id, so ``source_folder_id`` is not needed. With immutable ids a
        message already in the target "moves" again successfully, so repeating a move is harmless;
        that is why a failure of a whole batch request simply raises: the caller repeats the call.
        """
        graph = self._graph(grant)
        results: dict[str, ProviderError | None] = {}
        target_checked = False
        unique_ids = list(dict.fromkeys(message_ids))
        for start in range(0, len(unique_ids), self.MOVE_BATCH_STEPS):
            chunk = unique_ids[start:start + self.MOVE_BATCH_STEPS]
            answers = graph.batch([
                {
                    "id": str(index),
                    "method": "POST",
                    # Reference: https://learn.microsoft.com/en-us/graph/api/message-move
                    "url": f"/me/messages/{segment(message_id)}/move",
                    "headers": {"Content-Type": "application/json", "Prefer": IMMUTABLE_IDS},
                    "body": {"destinationId": target_folder_id},
                }
                for index, message_id in enumerate(chunk)
            ])
            outcomes = {message_id: self._move_outcome(answers.get(str(index)))
                        for index, message_id in enumerate(chunk)}
            if not target_checked and any(isinstance(e, NotFound) for e in outcomes.values()):
                # Graph answers 404 both for a message that has gone and for a target folder that
                # has (the user deleted Processed): only the first means "nothing left to do".
                # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-get
                graph.get_json(f"/me/mailFolders/{segment(target_folder_id)}", {"$select": "id"})
                target_checked = True
            results.update({message_id: None if isinstance(outcome, NotFound) else outcome
                            for message_id, outcome in outcomes.items()})
        return results

    @staticmethod
    def _move_outcome(answer: dict[str, Any] | None) -> ProviderError | None:
        if answer is None:
            return TransientError("the batch answer left this move out")
        status = int(answer.get("status", 0))
        if status in (200, 201):
            return None
        return error_from_response(status, CaseInsensitiveDict(answer.get("headers") or {}), answer.get("body"))

    def send_mime(self, grant: Grant, mime: bytes) -> str:
        """Send a complete RFC 5322 message; Graph keeps a copy in Sent Items. Returns "" (Graph
        answers a send with no id); the caller finds the sent copy by its Message-ID when it needs it.

        Mail that fits one request (about 3 MB, as Graph takes 4 MB bodies) goes in one
        ``sendMail`` with the MIME. Larger mail goes as a draft made from its MIME (which keeps its
        headers, the Message-ID among them), its large attachments added one by one, and the draft
        sent (see ``outgoing.py``).

        Only the request that sends can leave the outcome unknown: a failure after it may have
        reached Graph raises ``SendOutcomeUnknown``, never a transient error, so the message is
        not sent twice. A failure before it (making the draft, uploading) sent nothing: the draft
        is deleted where possible and the error raised for the caller to retry.
        """
        graph = self._graph(grant)
        if fits_one_request(mime):
            # Reference: https://learn.microsoft.com/en-us/graph/api/user-sendmail
            # Reference: https://learn.microsoft.com/en-us/graph/outlook-send-mime-message
            graph.post_mime("/me/sendMail", mime, may_repeat=False)
            return ""
        large = split_attachments(mime)
        self._delete_drafts(graph, large.message_id)
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages (MIME format)
        draft = graph.post_mime("/me/messages", large.draft_mime)
        draft_path = f"/me/messages/{segment(str(draft['id']))}"
        try:
            for attachment in large.attachments:
                self._attach(graph, draft_path, attachment)
        except ProviderError:
            with contextlib.suppress(ProviderError):
                graph.request("DELETE", draft_path).close()
            raise
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-send
        graph.request("POST", f"{draft_path}/send", may_repeat=False).close()
        return ""

    @staticmethod
    def _attach(graph: GraphClient, draft_path: str, attachment: Attachment) -> None:
        if not attachment.needs_upload_session:
            # Reference: https://learn.microsoft.com/en-us/graph/api/message-post-attachments
            graph.post_json(f"{draft_path}/attachments", attachment.as_file_attachment())
            return
        # Reference: https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
        session = graph.post_json(f"{draft_path}/attachments/createUploadSession",
                                  {"AttachmentItem": attachment.as_attachment_item()})
        content, total = attachment.content, len(attachment.content)
        for start in range(0, total, UPLOAD_CHUNK_BYTES):
            graph.upload_range(str(session["uploadUrl"]), content[start:start + UPLOAD_CHUNK_BYTES],
                               start=start, total=total)

    @staticmethod
    def _delete_drafts(graph: GraphClient, message_id: str) -> None:
        """Delete drafts of this message an earlier attempt left (its send failed before Graph
        took it), so the mailbox holds one copy of it."""
        if not message_id:
            return
        drafts = graph.get_json("/me/messages", {
            "$filter": f"internetMessageId eq '{_odata_string(message_id)}' and isDraft eq true", "$select": "id"})
        for draft in drafts.get("value", []):
            # Reference: https://learn.microsoft.com/en-us/graph/api/message-delete
            with contextlib.suppress(NotFound):
                graph.request("DELETE", f"/me/messages/{segment(str(draft['id']))}").close()

    def find_sent(self, grant: Grant, message_id: str) -> bool:
        """Whether the mailbox holds this message, sent: a message with this Message-ID that is
        not a draft (a draft left by a send that failed before Graph took it is not sent mail).

        The whole mailbox rather than Sent Items alone: Exchange keeps a message in Outbox until it
        has gone, and the user may have moved the sent copy already.
        """
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-messages
        # Reference: https://learn.microsoft.com/en-us/graph/query-parameters#filter-parameter
        found = self._graph(grant).get_json("/me/messages", {
            "$filter": f"internetMessageId eq '{_odata_string(message_id)}' and isDraft eq false",
            "$select": "id", "$top": 1,
        })
        return bool(found.get("value"))

    def watch_folder(self, grant: Grant, folder_id: str, *, notification_url: str, lifecycle_url: str = "",
                     client_state: str, topic: str = "", renew: PushChannel | None = None) -> PushChannel:
        """A subscription to new mail in the folder (see ``subscriptions.watch``)."""
        return subscriptions.watch(self._graph(grant), resource=f"me/mailFolders('{folder_id}')/messages",
                                   change_type="created", notification_url=notification_url,
                                   lifecycle_url=lifecycle_url, client_state=client_state, watched=folder_id,
                                   renew=renew)

    def stop_watching(self, grant: Grant, channel: PushChannel) -> None:
        subscriptions.stop(self._graph(grant), channel.id)

    def _graph(self, grant: Grant) -> GraphClient:
        mailbox = str(grant.data.get("home_account_id") or "")
        gate = self.concurrency
        slots: Slots = functools.partial(gate, mailbox) if gate is not None and mailbox else no_slots
        return GraphClient(self.session, self.config.graph_url, grant.access_token, slots=slots)


def _odata_string(value: str) -> str:
    """A value for a quoted OData string literal: a quote is doubled."""
    return value.replace("'", "''")
