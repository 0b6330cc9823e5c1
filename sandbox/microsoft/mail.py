"""Outlook mail through Microsoft Graph: mail folders, messages, per-folder delta, move, send.

State per account (``account["data"]["microsoft"]``):
    folders:      folder id -> {id, displayName, parentFolderId, wellKnownName, isHidden,
                                items: {immutable message id: change sequence},   # ordered by sequence
                                removed: {immutable message id: sequence}, removed_ids: {immutable id: old id}}
    messages:     immutable id -> message record (the stored raw MIME and the fields parsed from it)
    message_ids:  current (regular) id -> immutable id
    epoch:        bumped by expire_sync_state; delta tokens of an older epoch are refused

Each folder's ``items`` is kept in change order (a changed message is re-inserted at the end with a
new store-wide sequence number), so a delta page is a binary search plus a slice, not a scan.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import collections
import email.parser
import email.policy
import json
import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import graph_error
from .attachments import MAX_MESSAGE_BYTES, Attachments, message_too_large, with_attachments
from .common import (
    GraphError,
    Json,
    accepted,
    apply_select,
    bad_request,
    context,
    data_of,
    etag,
    graph,
    graph_json,
    graph_url,
    iso_z,
    json_body,
    model_properties,
    new_change_key,
    new_graph_id,
    not_found,
    offset_page,
    page_size,
    selected_fields,
    utc_now,
    wants_immutable_ids,
)
from .mime import build_mime, complete_mime, parse_mime

if TYPE_CHECKING:
    from ..app import Sandbox
    from .subscriptions import Subscriptions

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailfolder (well-known folder names)
WELL_KNOWN_FOLDERS = (
    ("inbox", "Inbox"),
    ("sentitems", "Sent Items"),
    ("drafts", "Drafts"),
    ("deleteditems", "Deleted Items"),
    ("archive", "Archive"),
)
ROOT = "msgfolderroot"
MESSAGE_TYPE = "#microsoft.graph.message"
REGULAR_ID_PREFIX = "AAMkAD"
IMMUTABLE_ID_PREFIX = "AAkALg"
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/message (properties)
# What a message is served with; the last two only when $select names them, as on Graph.
MESSAGE_PROPERTIES = (
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime",
    "sentDateTime", "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "conversationIndex", "isDeliveryReceiptRequested",
    "isReadReceiptRequested", "isRead", "isDraft", "webLink", "inferenceClassification", "body", "sender",
    "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag",
)
SELECT_ONLY_MESSAGE_PROPERTIES = ("internetMessageHeaders", "uniqueBody")
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailfolder (properties)
MAIL_FOLDER_PROPERTIES = ("id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount",
                          "totalItemCount", "isHidden")
model_properties("message", MESSAGE_PROPERTIES + SELECT_ONLY_MESSAGE_PROPERTIES)
model_properties("mailFolder", MAIL_FOLDER_PROPERTIES)
# The $filter clauses a message list understands: property -> its type.
# Reference: https://learn.microsoft.com/en-us/graph/filter-query-parameter
FILTERABLE = {"internetMessageId": str, "isDraft": bool, "isRead": bool, "subject": str}
FILTER_CLAUSE = re.compile(r"\s*([A-Za-z]+)\s+eq\s+('(?:[^']|'')*'|[A-Za-z]+)\s*(?:\s(and)\s+|$)", re.IGNORECASE)


def _encode_token(state: Json) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> Json:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise GraphError(410, "SyncStateNotFound", "The sync state generation is invalid.") from exc
    if not isinstance(state, dict):
        raise GraphError(410, "SyncStateNotFound", "The sync state generation is invalid.")
    return state


class Mail:
    def __init__(self, sandbox: Sandbox, subscriptions: Subscriptions) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.subscriptions = subscriptions
        self.attachments = Attachments(sandbox, self)
        # Per mailbox: when its recent sends were accepted (monotonic seconds), for the send limit.
        self.recent_sends: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def routes(self) -> list[BaseRoute]:
        folder = "/v1.0/me/mailFolders/{folder_id}"
        message = "/v1.0/me/messages/{message_id}"
        return [
            Route("/v1.0/me/mailFolders", self.folders, methods=["GET", "POST"]),
            # Before the folder route: "delta" is a function of the collection, not a folder id.
            Route("/v1.0/me/mailFolders/delta", self.folder_delta, methods=["GET"]),
            Route(folder, self.folder, methods=["GET", "DELETE"]),
            Route(folder + "/childFolders", self.child_folders, methods=["GET", "POST"]),
            Route(folder + "/messages", self.folder_messages, methods=["GET"]),
            Route(folder + "/messages/delta", self.delta, methods=["GET"]),
            Route(folder + "/messages/{message_id}", self.message, methods=["GET", "PATCH", "DELETE"]),
            Route("/v1.0/me/messages", self.messages, methods=["GET", "POST"]),
            Route(message, self.message, methods=["GET", "PATCH", "DELETE"]),
            Route(message + "/$value", self.message_mime, methods=["GET"]),
            Route(message + "/move", self.move, methods=["POST"]),
            Route(message + "/send", self.send_draft, methods=["POST"]),
            Route("/v1.0/me/sendMail", self.send_mail, methods=["POST"]),
            *self.attachments.graph_routes(),
        ]

    # -- state ---------------------------------------------------------------------------
    def setup(self, data: Json) -> None:
        data.update({"folders": {}, "messages": {}, "message_ids": {}, "epoch": 0, "removed_folders": {}})
        root = self.add_folder(data, "Top of Information Store", parent_id=None, well_known=ROOT)
        for well_known, name in WELL_KNOWN_FOLDERS:
            self.add_folder(data, name, parent_id=root["id"], well_known=well_known)

    def add_folder(self, data: Json, name: str, *, parent_id: str | None, well_known: str | None = None,
                   hidden: bool = False) -> Json:
        folder: Json = {
            "id": new_graph_id("AAMkADFld"), "displayName": name, "parentFolderId": parent_id,
            "wellKnownName": well_known, "isHidden": hidden, "items": {}, "removed": {}, "removed_ids": {},
            "changed": self.store.next_sequence(),
        }
        data["folders"][folder["id"]] = folder
        return folder

    def root(self, data: Json) -> Json:
        return self.folder_by_id(data, ROOT)

    def folder_by_id(self, data: Json, folder_id: str) -> Json:
        """A folder by id or well-known name (case-insensitive), as Graph resolves path segments."""
        folder = data["folders"].get(folder_id)
        if folder is not None:
            return folder
        lowered = folder_id.lower()
        for candidate in data["folders"].values():
            if candidate["wellKnownName"] == lowered:
                return candidate
        raise not_found("The specified folder could not be found in the store.")

    def folder_by_name(self, data: Json, name: str) -> Json:
        """A folder by display name, case-insensitive; ``Parent/Child`` paths reach nested folders."""
        parent = self.root(data)
        for part in name.strip("/").split("/"):
            match = self.child_named(data, parent["id"], part)
            if match is None:
                raise LookupError(f"no folder named {name!r}")
            parent = match
        return parent

    def child_named(self, data: Json, parent_id: str, name: str) -> Json | None:
        lowered = name.strip().lower()
        for folder in data["folders"].values():
            if folder["parentFolderId"] == parent_id and folder["displayName"].lower() == lowered:
                return folder
        return None

    def message_record(self, data: Json, message_id: str) -> Json:
        immutable = message_id if message_id in data["messages"] else data["message_ids"].get(message_id)
        if immutable is None:
            raise not_found()
        return data["messages"][immutable]

    def store_message(self, account: Json, folder: Json, raw: bytes, *, fields: Json | None = None,
                      is_read: bool = False, is_draft: bool = False) -> Json:
        """Store mail in a folder; ``fields`` are the MIME's parsed fields when the caller has them."""
        data = data_of(account)
        received = utc_now()
        record = {
            "immutableId": new_graph_id(IMMUTABLE_ID_PREFIX), "id": new_graph_id(REGULAR_ID_PREFIX),
            "folder": folder["id"], "raw": raw,
            "fields": {**fields, "receivedDateTime": iso_z(received)} if fields else parse_mime(raw, received=received),
            "isRead": is_read, "isDraft": is_draft, "createdDateTime": iso_z(received),
            "lastModifiedDateTime": iso_z(received), "changeKey": new_change_key(),
        }
        data["messages"][record["immutableId"]] = record
        data["message_ids"][record["id"]] = record["immutableId"]
        self.enter_folder(folder, record)
        self.subscriptions.message_changed(account, folder["id"], record, "created")
        return record

    def enter_folder(self, folder: Json, record: Json) -> None:
        immutable = record["immutableId"]
        folder["removed"].pop(immutable, None)
        folder["removed_ids"].pop(immutable, None)
        folder["items"].pop(immutable, None)
        # Its counts changed too, which a mail folder delta reports.
        folder["items"][immutable] = folder["changed"] = self.store.next_sequence()

    def leave_folder(self, folder: Json, record: Json) -> None:
        immutable = record["immutableId"]
        folder["items"].pop(immutable, None)
        folder["removed"][immutable] = folder["changed"] = self.store.next_sequence()
        folder["removed_ids"][immutable] = record["id"]

    def touch(self, account: Json, record: Json) -> None:
        """Record a change to a message that stays in its folder."""
        record["changeKey"] = new_change_key()
        record["lastModifiedDateTime"] = iso_z(utc_now())
        folder = data_of(account)["folders"][record["folder"]]
        self.enter_folder(folder, record)
        self.subscriptions.message_changed(account, folder["id"], record, "updated")

    def move_record(self, account: Json, record: Json, destination: Json) -> Json:
        data = data_of(account)
        source = data["folders"][record["folder"]]
        if source["id"] == destination["id"]:
            return record
        self.leave_folder(source, record)
        self.subscriptions.message_changed(account, source["id"], record, "deleted")
        # Exchange gives a moved item a new (regular) id; only its immutable id survives the move.
        del data["message_ids"][record["id"]]
        record["id"] = new_graph_id(REGULAR_ID_PREFIX)
        data["message_ids"][record["id"]] = record["immutableId"]
        record["folder"] = destination["id"]
        record["changeKey"] = new_change_key()
        record["lastModifiedDateTime"] = iso_z(utc_now())
        self.enter_folder(destination, record)
        self.subscriptions.message_changed(account, destination["id"], record, "created")
        return record

    def delete_record(self, account: Json, record: Json) -> None:
        data = data_of(account)
        folder = data["folders"][record["folder"]]
        self.leave_folder(folder, record)
        del data["message_ids"][record["id"]]
        del data["messages"][record["immutableId"]]
        self.subscriptions.message_changed(account, folder["id"], record, "deleted")

    # -- rendering -----------------------------------------------------------------------
    def folder_json(self, data: Json, folder: Json) -> Json:
        records = data["messages"]
        return {
            "id": folder["id"],
            "displayName": folder["displayName"],
            "parentFolderId": folder["parentFolderId"],
            "childFolderCount": sum(1 for f in data["folders"].values() if f["parentFolderId"] == folder["id"]),
            "unreadItemCount": sum(1 for m in folder["items"] if not records[m]["isRead"]),
            "totalItemCount": len(folder["items"]),
            "isHidden": folder["isHidden"],
        }

    def message_json(self, record: Json, *, immutable: bool, fields: set[str] | None = None) -> Json:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-move (the full message it returns)
        message_id = record["immutableId"] if immutable else record["id"]
        rendered = {
            "@odata.etag": etag(record["changeKey"]),
            "id": message_id,
            "createdDateTime": record["createdDateTime"],
            "lastModifiedDateTime": record["lastModifiedDateTime"],
            "changeKey": record["changeKey"],
            "categories": [],
            "importance": "normal",
            "parentFolderId": record["folder"],
            "isDeliveryReceiptRequested": None,
            "isReadReceiptRequested": False,
            "isRead": record["isRead"],
            "isDraft": record["isDraft"],
            "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(message_id, safe='')}"
                       "&exvsurl=1&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused",
            "flag": {"flagStatus": "notFlagged"},
            **record["fields"],
        }
        if fields and "internetMessageHeaders" in fields:
            # Reference: https://learn.microsoft.com/en-us/graph/api/resources/internetmessageheader
            headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(record["raw"])
            rendered["internetMessageHeaders"] = [{"name": name, "value": " ".join(str(value).split())}
                                                  for name, value in headers.items()]
        if fields and "uniqueBody" in fields:
            # The sandbox does not tell a reply's new text from the quoted one: the whole body.
            rendered["uniqueBody"] = rendered["body"]
        return apply_select(rendered, fields)

    # -- folders -------------------------------------------------------------------------
    @graph("mailFolders.list")
    async def folders(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders
        data = data_of(account)
        if request.method == "POST":
            return await self.create_folder(request, data, self.root(data))
        return self.list_folders(request, data, self.root(data), "users('me')/mailFolders")

    @graph("mailFolders.children")
    async def child_folders(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-post-childfolders
        data = data_of(account)
        parent = self.folder_by_id(data, request.path_params["folder_id"])
        if request.method == "POST":
            return await self.create_folder(request, data, parent)
        return self.list_folders(request, data, parent, f"users('me')/mailFolders('{parent['id']}')/childFolders")

    def list_folders(self, request: Request, data: Json, parent: Json, context_path: str) -> Response:
        include_hidden = request.query_params.get("includeHiddenFolders", "").lower() == "true"
        children = [
            f for f in data["folders"].values()
            if f["parentFolderId"] == parent["id"] and (include_hidden or not f["isHidden"])
        ]
        page, next_link = offset_page(request, children)
        body: Json = {
            "@odata.context": context(self.sandbox, context_path),
            "value": [apply_select(self.folder_json(data, f), selected_fields(request, "mailFolder")) for f in page],
        }
        if next_link:
            body["@odata.nextLink"] = next_link
        return graph_json(body)

    async def create_folder(self, request: Request, data: Json, parent: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-mailfolders
        request.scope["state"]["operation"] = "mailFolders.create"
        spec = await json_body(request)
        name = str(spec.get("displayName") or "").strip()
        if not name:
            raise bad_request("The displayName property is required.", "ErrorInvalidRequest")
        if self.child_named(data, parent["id"], name) is not None:
            raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        folder = self.add_folder(data, name, parent_id=parent["id"], hidden=bool(spec.get("isHidden", False)))
        return graph_json({"@odata.context": context(self.sandbox, "users('me')/mailFolders/$entity"),
                           **self.folder_json(data, folder)}, status=201)

    @graph("mailFolders.get")
    async def folder(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-get
        data = data_of(account)
        folder = self.folder_by_id(data, request.path_params["folder_id"])
        if request.method == "DELETE":
            # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-delete
            if folder["wellKnownName"]:
                raise GraphError(403, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
            self.delete_folder(account, folder)
            return Response(status_code=204)
        return graph_json({"@odata.context": context(self.sandbox, "users('me')/mailFolders/$entity"),
                           **apply_select(self.folder_json(data, folder), selected_fields(request, "mailFolder"))})

    @graph("mailFolders.delta")
    async def folder_delta(self, request: Request, account: Json) -> Response:
        """The folders of the mailbox, then those added, changed (counts included) or deleted since."""
        # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-delta
        data = data_of(account)
        fields = selected_fields(request, "mailFolder")
        token = request.query_params.get("$deltatoken")
        since = 0
        if token:
            state = _decode_token(token)
            if state.get("epoch") != data["epoch"] or state.get("kind") != "folders":
                raise GraphError(410, "SyncStateNotFound", "The sync state generation is invalid.")
            since = int(state.get("high", 0))
        high = self.store.sequence
        changed = [f for f in data["folders"].values()
                   if f["wellKnownName"] != ROOT and since < f.get("changed", 0) <= high]
        value: list[Json] = [{"@odata.type": "#microsoft.graph.mailFolder", **apply_select(self.folder_json(data, f),
                                                                                          fields)}
                             for f in changed]
        if since:
            value += [{"@odata.type": "#microsoft.graph.mailFolder", "id": folder_id,
                       "@removed": {"reason": "deleted"}}
                      for folder_id, sequence in data.get("removed_folders", {}).items() if since < sequence <= high]
        token = _encode_token({"epoch": data["epoch"], "kind": "folders", "high": high})
        link = f"me/mailFolders/delta?$deltatoken={token}"
        return graph_json({"@odata.context": context(self.sandbox, "Collection(mailFolder)"), "value": value,
                           "@odata.deltaLink": graph_url(self.sandbox, link)})

    def delete_folder(self, account: Json, folder: Json) -> None:
        data = data_of(account)
        for child in [f for f in data["folders"].values() if f["parentFolderId"] == folder["id"]]:
            self.delete_folder(account, child)
        for immutable in list(folder["items"]):
            self.delete_record(account, data["messages"][immutable])
        del data["folders"][folder["id"]]
        data.setdefault("removed_folders", {})[folder["id"]] = self.store.next_sequence()

    # -- messages ------------------------------------------------------------------------
    @graph("messages.list")
    async def folder_messages(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages
        data = data_of(account)
        folder = self.folder_by_id(data, request.path_params["folder_id"])
        # Newest first, as Outlook lists a folder.
        return self.list_messages(request, data, list(reversed(folder["items"])),
                                  f"users('me')/mailFolders('{folder['id']}')/messages")

    @graph("messages.list")
    async def messages(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-list-messages
        data = data_of(account)
        if request.method == "POST":
            return await self.create_draft(request, account)
        return self.list_messages(request, data, list(reversed(data["messages"])), "users('me')/messages")

    def list_messages(self, request: Request, data: Json, ids: list[str], context_path: str) -> Response:
        matches = self.message_filter(request)
        if matches is not None:
            ids = [i for i in ids if matches(data["messages"][i])]
        page, next_link = offset_page(request, ids)
        immutable, fields = wants_immutable_ids(request), selected_fields(request, "message")
        body: Json = {
            "@odata.context": context(self.sandbox, context_path),
            "value": [self.message_json(data["messages"][i], immutable=immutable, fields=fields) for i in page],
        }
        if next_link:
            body["@odata.nextLink"] = next_link
        return graph_json(body)

    @staticmethod
    def message_filter(request: Request) -> Callable[[Json], bool] | None:
        """``$filter`` as ``eq`` comparisons joined by ``and`` on the properties a sync client
        filters on (FILTERABLE), e.g. how a sender finds the message it sent, and not a draft:
        ``internetMessageId eq '<...>' and isDraft eq false``. Anything else is refused."""
        # Reference: https://learn.microsoft.com/en-us/graph/filter-query-parameter
        raw = request.query_params.get("$filter")
        if raw is None:
            return None
        wanted: list[tuple[str, Any]] = []
        position, text = 0, raw.strip()
        while position < len(text) or not wanted:
            match = FILTER_CLAUSE.match(text, position)
            if match is None or (match.group(3) and match.end() == len(text)):
                raise bad_request(f"Invalid filter clause: the sandbox understands 'property eq value' joined by "
                                  f"'and', not '{text[position:]}'.", "ErrorInvalidUrlQueryFilter")
            position = match.end()
            name, literal = match.group(1), match.group(2)
            spelled = next((known for known in FILTERABLE if known.lower() == name.lower()), None)
            if spelled is None:
                raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.message'.")
            if FILTERABLE[spelled] is bool:
                if literal.lower() not in ("true", "false"):
                    raise bad_request(f"The property '{spelled}' is a Boolean: compare it with true or false.")
                wanted.append((spelled, literal.lower() == "true"))
            else:
                if not literal.startswith("'"):
                    raise bad_request(f"The property '{spelled}' is a string: compare it with a quoted string.")
                wanted.append((spelled, literal[1:-1].replace("''", "'")))

        def matches(record: Json) -> bool:
            rendered = {"isDraft": record["isDraft"], "isRead": record["isRead"], **record["fields"]}
            return all(rendered.get(name) == value for name, value in wanted)

        return matches

    @graph("messages.get")
    async def message(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-get
        data = data_of(account)
        record = self.message_record(data, request.path_params["message_id"])
        if request.method == "DELETE":
            # Reference: https://learn.microsoft.com/en-us/graph/api/message-delete
            self.delete_record(account, record)
            return Response(status_code=204)
        if request.method == "PATCH":
            # Reference: https://learn.microsoft.com/en-us/graph/api/message-update
            changes = await json_body(request)
            if "isRead" in changes:
                record["isRead"] = bool(changes["isRead"])
            self.touch(account, record)
        return graph_json({
            "@odata.context": context(self.sandbox, "users('me')/messages/$entity"),
            **self.message_json(record, immutable=wants_immutable_ids(request),
                                fields=selected_fields(request, "message")),
        })

    @graph("messages.mime")
    async def message_mime(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-get-mime-message
        record = self.message_record(data_of(account), request.path_params["message_id"])
        raw = record["raw"]
        if record.get("attachments"):
            raw = await asyncio.to_thread(with_attachments, raw, record["attachments"])
        # Graph labels the MIME text/plain, as it takes it.
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-send-mime-message
        return Response(raw, headers={"Content-Type": "text/plain"})

    @graph("messages.move")
    async def move(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-move
        data = data_of(account)
        record = self.message_record(data, request.path_params["message_id"])
        spec = await json_body(request)
        if not spec.get("destinationId"):
            raise bad_request("The destinationId property is required.", "ErrorInvalidRequest")
        destination = self.folder_by_id(data, str(spec["destinationId"]))
        self.move_record(account, record, destination)
        return graph_json({
            "@odata.context": context(self.sandbox, "users('me')/messages/$entity"),
            "@odata.type": MESSAGE_TYPE,
            **self.message_json(record, immutable=wants_immutable_ids(request)),
        }, status=201)

    # -- delta ---------------------------------------------------------------------------
    @graph("messages.delta")
    async def delta(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-delta
        data = data_of(account)
        folder = self.folder_by_id(data, request.path_params["folder_id"])
        token = request.query_params.get("$deltatoken") or request.query_params.get("$skiptoken")
        if token:
            state = _decode_token(token)
            if state.get("epoch") != data["epoch"] or state.get("folder") != folder["id"]:
                raise GraphError(410, "SyncStateNotFound", "The sync state generation is invalid.")
        else:
            fields = selected_fields(request, "message")
            state = {"epoch": data["epoch"], "folder": folder["id"], "low": 0, "high": self.store.sequence,
                     "phase": "items", "after": 0, "select": sorted(fields) if fields else None}
        if request.query_params.get("$deltatoken"):
            # A delta link starts a new round covering everything since the previous round's high mark.
            state = {**state, "low": state["high"], "high": self.store.sequence, "phase": "items",
                     "after": state["high"]}
        size = page_size(request)
        immutable = wants_immutable_ids(request)
        fields = set(state["select"]) if state["select"] else None
        page: list[Json] = []
        next_state: Json | None = None

        if state["phase"] == "items":
            ids, sequences = list(folder["items"]), list(folder["items"].values())
            start = bisect.bisect_right(sequences, state["after"])
            end = bisect.bisect_right(sequences, state["high"])
            taken = ids[start:min(end, start + size)]
            # Reference: https://learn.microsoft.com/en-us/graph/delta-query-messages (each item is typed)
            page.extend({"@odata.type": MESSAGE_TYPE,
                         **self.message_json(data["messages"][i], immutable=immutable, fields=fields)}
                        for i in taken)
            if start + len(taken) < end:
                next_state = {**state, "after": sequences[start + len(taken) - 1]}
            else:
                state = {**state, "phase": "removed", "after": state["low"]}
        # The first round of a sync reports what is there; removals only matter to a client that synced before.
        if next_state is None and state["phase"] == "removed" and state["low"] > 0:
            ids, sequences = list(folder["removed"]), list(folder["removed"].values())
            start = bisect.bisect_right(sequences, state["after"])
            end = bisect.bisect_right(sequences, state["high"])
            taken = ids[start:min(end, start + size - len(page))]
            page.extend({
                "@odata.type": MESSAGE_TYPE,
                "id": i if immutable else folder["removed_ids"][i],
                "@removed": {"reason": "deleted"},
            } for i in taken)
            if start + len(taken) < end:
                next_state = {**state, "after": sequences[start + len(taken) - 1]}

        link = f"me/mailFolders/{folder['id']}/messages/delta"
        body: Json = {"@odata.context": context(self.sandbox, "Collection(message)"), "value": page}
        if next_state is not None:
            body["@odata.nextLink"] = graph_url(self.sandbox, f"{link}?$skiptoken={_encode_token(next_state)}")
        else:
            body["@odata.deltaLink"] = graph_url(self.sandbox, f"{link}?$deltatoken={_encode_token(state)}")
        return graph_json(body)

    # -- sending -------------------------------------------------------------------------
    @graph("messages.send")
    async def send_mail(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-sendmail
        if self.is_mime(request):
            raw = await self.posted_mime(request, account)
            save = True
        else:
            spec = await json_body(request)
            message = spec.get("message")
            if not isinstance(message, dict):
                raise bad_request("The message property is required.", "ErrorInvalidRequest")
            if not message.get("toRecipients") and not message.get("ccRecipients") \
                    and not message.get("bccRecipients"):
                raise bad_request("At least one recipient is required.", "ErrorInvalidRecipients")
            raw = await asyncio.to_thread(build_mime, message, sender=account)
            save = spec.get("saveToSentItems", True) not in (False, "false")
        self.check_size(raw)
        throttled = self.over_send_limit(account)
        if throttled is not None:
            return throttled
        self.deliver(account, raw, await self.parse(raw), save_copy=save)
        return accepted()

    @staticmethod
    def is_mime(request: Request) -> bool:
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-send-mime-message
        return request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/plain"

    @staticmethod
    async def posted_mime(request: Request, account: Json) -> bytes:
        """A base64 MIME body (sendMail, or a draft made from MIME), with the headers Exchange
        stamps when the client left them out."""
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-send-mime-message
        try:
            raw = base64.b64decode(await request.body(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request("Invalid base64 string for MIME content.", "ErrorMimeContentInvalidBase64String") \
                from exc
        if not raw.strip():
            raise bad_request("The MIME content is empty.", "ErrorMimeContentInvalid")
        return await asyncio.to_thread(complete_mime, raw, sender=account)

    def check_size(self, raw: bytes) -> None:
        if self.sandbox.limits_enabled and len(raw) > MAX_MESSAGE_BYTES:
            raise message_too_large()

    def over_send_limit(self, account: Json) -> Response | None:
        """Exchange Online's sending limit: at most N messages a minute per mailbox (30 unless the
        control API changed it), over any moving 60 seconds. Over it: 429 in Graph's throttling
        shape with the seconds until a send is allowed again; refused sends do not count."""
        # Reference: https://learn.microsoft.com/en-us/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits-1
        # Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
        if not self.sandbox.limits_enabled:
            return None
        window = self.recent_sends[account["id"]]
        moment = time.monotonic()
        while window and window[0] <= moment - 60:
            window.popleft()
        per_minute = self.sandbox.graph_sends_per_minute
        if len(window) >= per_minute:
            wait = max(1, math.ceil(window[0] + 60 - moment))
            return graph_error(429, "ApplicationThrottled",
                               f"Application is over its MessageSubmission limit of {per_minute} messages per minute.",
                               {"Retry-After": str(wait)})
        window.append(moment)
        return None

    @staticmethod
    async def parse(raw: bytes) -> Json:
        # Building and parsing MIME with a 25 MB attachment takes a while: keep it off the event loop.
        return await asyncio.to_thread(parse_mime, raw, received=utc_now())

    async def create_draft(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages
        request.scope["state"]["operation"] = "messages.createDraft"
        data = data_of(account)
        # A draft made from MIME keeps the MIME's headers, its Message-ID (internetMessageId) included.
        if self.is_mime(request):
            raw = await self.posted_mime(request, account)
        else:
            raw = await asyncio.to_thread(build_mime, await json_body(request), sender=account)
        record = self.store_message(account, self.folder_by_id(data, "drafts"), raw, fields=await self.parse(raw),
                                    is_read=True, is_draft=True)
        return graph_json({
            "@odata.context": context(self.sandbox, "users('me')/messages/$entity"),
            **self.message_json(record, immutable=wants_immutable_ids(request)),
        }, status=201)

    @graph("messages.sendDraft")
    async def send_draft(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-send
        data = data_of(account)
        record = self.message_record(data, request.path_params["message_id"])
        if not record["isDraft"]:
            raise bad_request("Only draft messages can be sent.", "ErrorInvalidOperation")
        if not self.recipients(record["fields"]):
            raise bad_request("At least one recipient is required.", "ErrorInvalidRecipients")
        waiting = record.get("attachments") or []
        raw = await asyncio.to_thread(with_attachments, record["raw"], waiting) if waiting else record["raw"]
        self.check_size(raw)
        throttled = self.over_send_limit(account)
        if throttled is not None:
            return throttled
        if waiting:
            record["raw"], record["attachments"] = raw, []
            record["fields"] = {**await self.parse(raw), "internetMessageId": record["fields"]["internetMessageId"]}
        record["isDraft"] = False
        record["fields"]["sentDateTime"] = iso_z(utc_now())
        self.move_record(account, record, self.folder_by_id(data, "sentitems"))
        self.deliver(account, record["raw"], record["fields"], save_copy=False)
        return accepted()

    @staticmethod
    def recipients(fields: Json) -> list[str]:
        return list(dict.fromkeys(
            r["emailAddress"]["address"].lower()
            for key in ("toRecipients", "ccRecipients", "bccRecipients") for r in fields[key]
        ))

    def deliver(self, sender: Json, raw: bytes, fields: Json, *, save_copy: bool) -> None:
        """Keep the sent copy and deliver to recipients that are sandbox Microsoft mailboxes."""
        if save_copy:
            self.store_message(sender, self.folder_by_id(data_of(sender), "sentitems"), raw, fields=fields,
                               is_read=True)
        for address in self.recipients(fields):
            recipient = self.store.find_account("microsoft", address)
            if recipient is not None and recipient["kind"] in ("user", "shared", "room") \
                    and recipient["id"] != sender["id"]:
                self.store_message(recipient, self.folder_by_id(data_of(recipient), "inbox"), raw, fields=fields)

    # -- control API -----------------------------------------------------------------------
    def put_message(self, account: Json, *, folder: str, raw: bytes) -> Json:
        data = data_of(account)
        target = self.folder_by_name(data, folder)
        record = self.store_message(account, target, raw)
        return {"id": record["id"], "immutable_id": record["immutableId"], "folder_id": target["id"],
                "internet_message_id": record["fields"]["internetMessageId"]}

    def mailbox(self, account: Json) -> Json:
        data = data_of(account)
        return {"folders": [
            {
                "id": folder["id"], "name": self.path_of(data, folder), "well_known_name": folder["wellKnownName"],
                "messages": [
                    {"id": record["id"], "immutable_id": record["immutableId"],
                     "subject": record["fields"]["subject"],
                     "internet_message_id": record["fields"]["internetMessageId"], "is_read": record["isRead"],
                     "thread_id": record["fields"]["conversationId"]}
                    for record in (data["messages"][i] for i in folder["items"])
                ],
            }
            for folder in data["folders"].values() if folder["wellKnownName"] != ROOT
        ]}

    def path_of(self, data: Json, folder: Json) -> str:
        names: list[str] = []
        current: Any = folder
        while current is not None and current["wellKnownName"] != ROOT:
            names.append(current["displayName"])
            current = data["folders"].get(current["parentFolderId"] or "")
        return "/".join(reversed(names))

    def expire_sync_state(self, account: Json) -> None:
        data_of(account)["epoch"] += 1
