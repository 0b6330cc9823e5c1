"""Gmail API v1: profile, send-as, labels, messages, history, watch and Pub/Sub-shaped push.

Per-account state lives in ``account["data"]["google"]["gmail"]``:
``labels`` (id -> Label), ``messages`` (id -> stored message with its raw bytes), ``order`` (message
ids in arrival order, append-only, so list pages resume by position), ``history`` (records in
increasing id order), ``history_floor`` (older start ids answer 404), ``threads_by_message_id``
(RFC 5322 Message-ID -> threadId) and ``watch``.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import collections
import datetime as dt
import email.utils
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import mime
from .common import (
    ApiError,
    Json,
    api_route,
    b64url,
    b64url_decode,
    bad_request,
    bool_param,
    int_param,
    json_body,
    not_found,
    now_ms,
    ok,
    rfc3339,
)

if TYPE_CHECKING:
    from . import GoogleEmulator

SYSTEM_LABELS = (
    "INBOX", "SENT", "DRAFT", "TRASH", "SPAM", "UNREAD", "STARRED", "IMPORTANT", "CHAT",
    "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_FORUMS",
)
# Labels Gmail shows in its own list; the others carry only id, name and type.
LISTED_SYSTEM_LABELS = {"INBOX", "SENT", "DRAFT", "TRASH", "SPAM", "STARRED", "IMPORTANT", "CHAT"}
HISTORY_TYPES = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted",
                 "labelAdded": "labelsAdded", "labelRemoved": "labelsRemoved"}
HISTORY_KEPT = 100_000
# "Re: Re: Fwd: Quote" and "quote" are one subject to Gmail's threading.
REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
BATCH_MODIFY_LIMIT = 1000
WATCH_LIFETIME_MS = 7 * 24 * 3600 * 1000
PARSE_CACHE_SIZE = 8  # parsed trees hold decoded attachments, so keep few
PUSH_COALESCE_SECONDS = 0.2
TOPIC_NAME = re.compile(r"projects/[^/]+/topics/[^/]+")
# messages.send takes a message of 35 MB at most, sent as media to its /upload URI. Google states
# no figure for the message base64url-encoded in a JSON body (its upload guide keeps even a simple
# media upload to "5 MB or less"); the smallest it has been seen to refuse is a body over 1 MB,
# answered 400 "Request payload size exceeds the limit: 1048576 bytes.". The sandbox holds JSON
# bodies to that, so a client sending large mail as JSON finds out here, not in production.
# Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/send
# Reference: https://developers.google.com/workspace/gmail/api/guides/uploads
SEND_UPLOAD_MAX_BYTES = 36_700_160  # the discovery document's mediaUpload.maxSize
SEND_JSON_MAX_BYTES = 1024 * 1024
# Search operators naming a system label by another word than its id.
# Reference: https://support.google.com/mail/answer/7190
LABEL_WORDS = {"drafts": "DRAFT", "draft": "DRAFT", "chats": "CHAT", "chat": "CHAT"}


def base_subject(subject: str) -> str:
    return " ".join(REPLY_PREFIX.sub("", subject or "").split()).casefold()


class Gmail:
    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emulator = emulator
        self.store = emulator.store
        # Parsed payload trees of recently read messages; derived data, so it is not part of the state.
        self.parsed: collections.OrderedDict[str, mime.ParsedMessage] = collections.OrderedDict()
        self.push_pending: set[str] = set()  # account ids with a Pub/Sub push about to go out

    def routes(self) -> list[BaseRoute]:
        user = "/gmail/v1/users/{userId}"
        e = self.emulator

        def route(path: str, handler: Any, method: str, operation: str) -> BaseRoute:
            return api_route(e, path, handler, methods=[method], operation=operation)

        return [
            route(user + "/profile", self.get_profile, "GET", "gmail.getProfile"),
            route(user + "/settings/sendAs", self.list_send_as, "GET", "gmail.sendAs.list"),
            route(user + "/labels", self.list_labels, "GET", "gmail.labels.list"),
            route(user + "/labels", self.create_label, "POST", "gmail.labels.create"),
            route(user + "/labels/{id}", self.get_label, "GET", "gmail.labels.get"),
            route(user + "/labels/{id}", self.patch_label, "PATCH", "gmail.labels.patch"),
            route(user + "/labels/{id}", self.patch_label, "PUT", "gmail.labels.update"),
            route(user + "/labels/{id}", self.delete_label, "DELETE", "gmail.labels.delete"),
            route(user + "/messages", self.list_messages, "GET", "gmail.messages.list"),
            route(user + "/messages/send", self.send_message, "POST", "gmail.messages.send"),
            route("/upload" + user + "/messages/send", self.send_message, "POST", "gmail.messages.send"),
            route(user + "/messages/batchModify", self.batch_modify, "POST", "gmail.messages.batchModify"),
            route(user + "/messages/{id}", self.get_message, "GET", "gmail.messages.get"),
            route(user + "/messages/{id}", self.delete_message, "DELETE", "gmail.messages.delete"),
            route(user + "/messages/{id}/modify", self.modify_message, "POST", "gmail.messages.modify"),
            route(user + "/messages/{id}/trash", self.trash_message, "POST", "gmail.messages.trash"),
            route(user + "/messages/{messageId}/attachments/{id}", self.get_attachment, "GET",
                  "gmail.messages.attachments.get"),
            route(user + "/history", self.list_history, "GET", "gmail.history.list"),
            route(user + "/watch", self.watch, "POST", "gmail.watch"),
            route(user + "/stop", self.stop, "POST", "gmail.stop"),
            Route("/_sandbox/google/{email}/watch", self.control_watch, methods=["GET"]),
        ]

    # -- state -----------------------------------------------------------------------------

    def setup(self, account: Json) -> None:
        labels = {}
        for label_id in SYSTEM_LABELS:
            label: Json = {"id": label_id, "name": label_id, "type": "system"}
            if label_id in LISTED_SYSTEM_LABELS:
                label.update(messageListVisibility="hide", labelListVisibility="labelShow")
            labels[label_id] = label
        sequence = self.store.next_sequence()
        account["data"]["google"]["gmail"] = {
            "labels": labels, "next_label": 1, "messages": {}, "order": [], "history": [],
            "history_id": sequence, "history_floor": sequence, "threads_by_message_id": {}, "watch": None,
        }

    @staticmethod
    def box(account: Json) -> Json:
        return account["data"]["google"]["gmail"]

    def mailbox_for(self, request: Request, account: Json) -> Json:
        user_id = request.path_params["userId"]
        if user_id not in ("me", account["email"]):
            # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
            raise ApiError(403, "forbidden", f"Delegation denied for {account['email']}")
        return self.box(account)

    def find_label(self, box: Json, name_or_id: str) -> Json | None:
        """By id, else by name ignoring case (system labels by their id, e.g. "inbox")."""
        if name_or_id in box["labels"]:
            return box["labels"][name_or_id]
        wanted = name_or_id.strip().lower()
        for label in box["labels"].values():
            if label["name"].lower() == wanted:
                return label
        return None

    def add_message(self, account: Json, raw: bytes, label_ids: list[str], *, thread_id: str | None = None,
                    summary: Json | None = None, sent: bool = False) -> Json:
        box = self.box(account)
        summary = summary or mime.summary(raw)
        message_id = secrets.token_hex(8)
        if sent:
            # What a sender asks for: the thread it names, only when the message answers one of
            # that thread's messages and keeps its subject; otherwise a thread of its own.
            thread_id = self._sent_thread(box, thread_id, summary) or message_id
        elif thread_id is None or not any(m["threadId"] == thread_id for m in box["messages"].values()):
            thread_id = self._thread_for(box, summary) or message_id
        message = {
            "id": message_id, "threadId": thread_id, "labelIds": list(dict.fromkeys(label_ids)), "raw": raw,
            "internalDate": now_ms(), "historyId": 0, "summary": summary,
        }
        box["messages"][message_id] = message
        box["order"].append(message_id)
        if summary["message_id"]:
            box["threads_by_message_id"].setdefault(summary["message_id"], thread_id)
        self._record(account, message, "messagesAdded", {"message": self._brief(message)}, list(label_ids))
        return message

    @staticmethod
    def _thread_for(box: Json, summary: Json) -> str | None:
        # Gmail threads a reply with the message it answers (In-Reply-To, then References).
        for reference in [summary["in_reply_to"], *reversed(summary["references"])]:
            if reference and reference in box["threads_by_message_id"]:
                return str(box["threads_by_message_id"][reference])
        return None

    @staticmethod
    def _sent_thread(box: Json, thread_id: str | None, summary: Json) -> str | None:
        # Reference: https://developers.google.com/workspace/gmail/api/guides/threads
        # ("Adding drafts and messages to threads": the threadId must be given, References and
        # In-Reply-To set as RFC 2822 says, and the Subject must match.)
        if not thread_id:
            return None
        members = [m for m in box["messages"].values() if m["threadId"] == thread_id]
        answered = {summary["in_reply_to"], *summary["references"]} - {""}
        if not any(m["summary"]["message_id"] in answered for m in members):
            return None
        if not any(base_subject(m["summary"]["subject"]) == base_subject(summary["subject"]) for m in members):
            return None
        return thread_id

    def change_labels(self, account: Json, message: Json, add: list[str], remove: list[str]) -> None:
        added = [label for label in dict.fromkeys(add) if label not in message["labelIds"]]
        removed = [label for label in dict.fromkeys(remove) if label in message["labelIds"] and label not in added]
        message["labelIds"] = [label for label in message["labelIds"] if label not in removed] + added
        if added:
            self._record(account, message, "labelsAdded", {"message": self._brief(message), "labelIds": added}, added)
        if removed:
            self._record(account, message, "labelsRemoved", {"message": self._brief(message), "labelIds": removed},
                         removed)

    def remove_message(self, account: Json, message: Json) -> None:
        box = self.box(account)
        del box["messages"][message["id"]]
        self.parsed.pop(message["id"], None)
        self._record(account, message, "messagesDeleted", {"message": self._brief(message)}, message["labelIds"])

    @staticmethod
    def _brief(message: Json) -> Json:
        return {"id": message["id"], "threadId": message["threadId"], "labelIds": list(message["labelIds"])}

    def _record(self, account: Json, message: Json, kind: str, entry: Json, changed_labels: list[str]) -> None:
        """Append a history record; every change to a mailbox gets a new, higher history id."""
        box = self.box(account)
        history_id = self.store.next_sequence()
        box["history"].append({
            "id": history_id, "messages": [{"id": message["id"], "threadId": message["threadId"]}], kind: [entry],
            "labels": sorted(set(message["labelIds"]) | set(changed_labels)),
        })
        if len(box["history"]) > HISTORY_KEPT:
            dropped = box["history"][: len(box["history"]) - HISTORY_KEPT]
            del box["history"][: len(dropped)]
            box["history_floor"] = dropped[-1]["id"]
        box["history_id"] = history_id
        message["historyId"] = history_id
        self._notify(account, set(message["labelIds"]) | set(changed_labels))

    def expire(self, account: Json) -> None:
        box = self.box(account)
        box["history_floor"] = self.store.next_sequence()
        box["history"].clear()

    # -- push -------------------------------------------------------------------------------

    def _notify(self, account: Json, labels: set[str]) -> None:
        # Reference: https://developers.google.com/workspace/gmail/api/guides/push
        box = self.box(account)
        watch = box["watch"]
        if watch is None or watch["expiration"] < now_ms():
            return
        watched = set(watch["labelIds"])
        if watched:
            if watch["labelFilterBehavior"] == "exclude" and labels <= watched:
                return
            if watch["labelFilterBehavior"] == "include" and not labels & watched:
                return
        # Like Gmail, changes close together are announced once, with the latest history id.
        if account["id"] not in self.push_pending:
            self.push_pending.add(account["id"])
            asyncio.get_running_loop().call_later(PUSH_COALESCE_SECONDS, self._publish, account["id"])

    def _publish(self, account_id: str) -> None:
        self.push_pending.discard(account_id)
        account = self.store.accounts.get(account_id)
        watch = self.box(account)["watch"] if account else None
        push = self._push_config(watch["topicName"]) if watch else None
        if account is None or watch is None or push is None:
            return
        data = json.dumps({"emailAddress": account["email"], "historyId": self.box(account)["history_id"]}).encode()
        message_id = str(secrets.randbelow(10**16))
        published = rfc3339(dt.datetime.now(dt.UTC))
        body = {
            "message": {
                "data": base64.b64encode(data).decode("ascii"), "messageId": message_id, "message_id": message_id,
                "publishTime": published, "publish_time": published,
            },
            "subscription": "projects/sandbox/subscriptions/" + watch["topicName"].rsplit("/", 1)[-1] + "-push",
        }
        headers = {}
        if push.get("service_account_email"):
            # Reference: https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
            token = self.emulator.push_signer.token(audience=push.get("audience") or push["push_endpoint"],
                                                    service_account=push["service_account_email"])
            headers["Authorization"] = f"Bearer {token}"
        self.emulator.sandbox.push(push["push_endpoint"], json_body=body, headers=headers, account=account["email"],
                                   kind="gmail.push")

    def _push_config(self, topic: str) -> Json | None:
        """The push subscription configured for the topic (by full name or by its last segment):
        its endpoint and, when authenticated, the service account and audience of its tokens."""
        endpoints = self.store.settings["push_endpoints"]
        config = endpoints.get(topic) or endpoints.get(topic.rsplit("/", 1)[-1])
        return {"push_endpoint": config} if isinstance(config, str) else config

    # -- handlers ---------------------------------------------------------------------------

    async def get_profile(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/getProfile
        box = self.mailbox_for(request, account)
        threads = {message["threadId"] for message in box["messages"].values()}
        return ok({"emailAddress": account["email"], "messagesTotal": len(box["messages"]),
                   "threadsTotal": len(threads), "historyId": str(box["history_id"])})

    async def list_send_as(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.settings.sendAs/list
        self.mailbox_for(request, account)
        send_as = [{"sendAsEmail": account["email"], "displayName": account["display_name"], "replyToAddress": "",
                    "signature": "", "isPrimary": True, "isDefault": True}]
        for other in self.store.accounts.values():
            if other["provider"] == "google" and other["kind"] == "alias" and other.get("alias_of") == account["email"]:
                send_as.append({"sendAsEmail": other["email"], "displayName": account["display_name"],
                                "replyToAddress": "", "signature": "", "isDefault": False, "treatAsAlias": True,
                                "verificationStatus": "accepted"})
        return ok({"sendAs": send_as})

    async def list_labels(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/list
        box = self.mailbox_for(request, account)
        return ok({"labels": list(box["labels"].values())})

    async def get_label(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/get
        box = self.mailbox_for(request, account)
        label = self._label_or_404(box, request.path_params["id"])
        members = [m for m in box["messages"].values() if label["id"] in m["labelIds"]]
        unread = [m for m in members if "UNREAD" in m["labelIds"]]
        return ok({**label, "messagesTotal": len(members), "messagesUnread": len(unread),
                   "threadsTotal": len({m["threadId"] for m in members}),
                   "threadsUnread": len({m["threadId"] for m in unread})})

    async def create_label(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/create
        box = self.mailbox_for(request, account)
        body = await json_body(request)
        name = self._valid_label_name(box, body.get("name"), exclude_id=None)
        label_id = f"Label_{box['next_label']}"
        box["next_label"] += 1
        label = {"id": label_id, "name": name, "type": "user",
                 "messageListVisibility": body.get("messageListVisibility", "show"),
                 "labelListVisibility": body.get("labelListVisibility", "labelShow")}
        if body.get("color"):
            label["color"] = body["color"]
        box["labels"][label_id] = label
        return ok(label)

    async def patch_label(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/patch
        box = self.mailbox_for(request, account)
        label = self._label_or_404(box, request.path_params["id"])
        if label["type"] == "system":
            raise bad_request(f"Invalid label: {label['id']}")
        body = await json_body(request)
        if "name" in body:
            label["name"] = self._valid_label_name(box, body["name"], exclude_id=label["id"])
        for key in ("messageListVisibility", "labelListVisibility", "color"):
            if key in body:
                label[key] = body[key]
        return ok(label)

    async def delete_label(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/delete
        box = self.mailbox_for(request, account)
        label = self._label_or_404(box, request.path_params["id"])
        if label["type"] == "system":
            raise bad_request(f"Invalid label: {label['id']}")
        for message in list(box["messages"].values()):
            if label["id"] in message["labelIds"]:
                self.change_labels(account, message, [], [label["id"]])
        del box["labels"][label["id"]]
        return Response(status_code=204)

    def _label_or_404(self, box: Json, label_id: str) -> Json:
        label = box["labels"].get(label_id)
        if label is None:
            raise not_found()
        return label

    def _valid_label_name(self, box: Json, name: Any, *, exclude_id: str | None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Invalid label name")
        name = name.strip()
        for label in box["labels"].values():
            if label["id"] != exclude_id and label["name"].lower() == name.lower():
                # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/create
                raise ApiError(409, "duplicate", "Label name exists or conflicts")
        return name

    async def list_messages(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list
        box = self.mailbox_for(request, account)
        page_size = int_param(request, "maxResults", 100, high=500)
        label_ids = request.query_params.getlist("labelIds")
        for label_id in label_ids:
            if label_id not in box["labels"]:
                raise bad_request(f"Invalid label: {label_id}")
        query = SearchQuery(request.query_params.get("q", ""), box, self)
        include_spam_trash = (bool_param(request, "includeSpamTrash") or bool({"SPAM", "TRASH"} & set(label_ids))
                              or query.asks_spam_trash)
        start = len(box["order"])
        if request.query_params.get("pageToken"):
            start = self._position(request.query_params["pageToken"], len(box["order"]))
        # Newest first: walk the arrival order backwards from where the previous page stopped.
        found: list[Json] = []
        position = start
        messages = box["messages"]
        while position > 0 and len(found) < page_size:
            position -= 1
            message = messages.get(box["order"][position])
            if message is None:
                continue
            labels = message["labelIds"]
            if not include_spam_trash and ("SPAM" in labels or "TRASH" in labels):
                continue
            if all(label in labels for label in label_ids) and query.matches(message):
                found.append({"id": message["id"], "threadId": message["threadId"]})
        body: Json = {"resultSizeEstimate": len(found)}
        if found:
            body["messages"] = found
        if position > 0 and len(found) == page_size:
            body["nextPageToken"] = str(position)
            # An estimate, as Gmail's is: what was found plus what is left to look at.
            body["resultSizeEstimate"] = len(found) + position
        return ok(body)

    @staticmethod
    def _position(token: str, limit: int) -> int:
        if not token.isdigit() or int(token) > limit:
            raise bad_request("Invalid pageToken", "invalidParameter")
        return int(token)

    def message_or_404(self, box: Json, message_id: str) -> Json:
        message = box["messages"].get(message_id)
        if message is None:
            raise not_found()
        return message

    async def parsed_message(self, message: Json) -> mime.ParsedMessage:
        parsed = self.parsed.get(message["id"])
        if parsed is None:
            # Parsing a message with a 25 MB attachment takes a while: not on the event loop.
            parsed = await asyncio.to_thread(mime.payload_tree, message["id"], message["raw"])
            self.parsed[message["id"]] = parsed
            while len(self.parsed) > PARSE_CACHE_SIZE:
                self.parsed.popitem(last=False)
        self.parsed.move_to_end(message["id"])
        return parsed

    async def get_message(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/get
        box = self.mailbox_for(request, account)
        message = self.message_or_404(box, request.path_params["id"])
        message_format = request.query_params.get("format", "full")
        if message_format not in ("full", "metadata", "minimal", "raw"):
            raise bad_request(f"Invalid value at 'format' ({message_format})", "invalidParameter")
        body: Json = {
            "id": message["id"], "threadId": message["threadId"], "labelIds": list(message["labelIds"]),
            "snippet": message["summary"]["snippet"], "sizeEstimate": len(message["raw"]),
            "historyId": str(message["historyId"]), "internalDate": str(message["internalDate"]),
        }
        if message_format == "raw":
            body["raw"] = b64url(message["raw"])
        elif message_format == "full":
            body["payload"] = (await self.parsed_message(message)).payload
        elif message_format == "metadata":
            wanted = {name.lower() for name in request.query_params.getlist("metadataHeaders")}
            root = mime.parse_headers(message["raw"])
            headers = [{"name": name, "value": value.strip()} for name, value in mime.raw_headers(root)
                       if not wanted or name.lower() in wanted]
            body["payload"] = {"partId": "", "mimeType": root.get_content_type(), "filename": "",
                               "headers": headers, "body": {"size": 0}}
        return ok(body)

    async def get_attachment(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages.attachments/get
        box = self.mailbox_for(request, account)
        message = self.message_or_404(box, request.path_params["messageId"])
        data = (await self.parsed_message(message)).attachments.get(request.path_params["id"])
        if data is None:
            raise bad_request("Invalid attachment token")
        return ok({"size": len(data), "data": b64url(data)})

    async def modify_message(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/modify
        box = self.mailbox_for(request, account)
        message = self.message_or_404(box, request.path_params["id"])
        add, remove = self._label_changes(box, await json_body(request))
        self.change_labels(account, message, add, remove)
        return ok({"id": message["id"], "threadId": message["threadId"], "labelIds": list(message["labelIds"])})

    async def batch_modify(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/batchModify
        box = self.mailbox_for(request, account)
        body = await json_body(request)
        ids = body.get("ids") or []
        if not isinstance(ids, list) or not ids:
            raise bad_request("No message ids specified.")
        if len(ids) > BATCH_MODIFY_LIMIT:
            raise bad_request(f"Too many ids in request: {len(ids)}. Maximum is {BATCH_MODIFY_LIMIT}.")
        add, remove = self._label_changes(box, body)
        for message_id in ids:
            message = box["messages"].get(message_id)
            if message is not None:
                self.change_labels(account, message, add, remove)
        return Response(status_code=204)

    def _label_changes(self, box: Json, body: Json) -> tuple[list[str], list[str]]:
        add, remove = list(body.get("addLabelIds") or []), list(body.get("removeLabelIds") or [])
        for label_id in add + remove:
            if label_id not in box["labels"]:
                raise bad_request(f"Invalid label: {label_id}")
        return add, remove

    async def trash_message(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/trash
        box = self.mailbox_for(request, account)
        message = self.message_or_404(box, request.path_params["id"])
        self.change_labels(account, message, ["TRASH"], ["INBOX", "SPAM"])
        return ok({"id": message["id"], "threadId": message["threadId"], "labelIds": list(message["labelIds"])})

    async def delete_message(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/delete
        box = self.mailbox_for(request, account)
        self.remove_message(account, self.message_or_404(box, request.path_params["id"]))
        return Response(status_code=204)

    async def send_message(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/send
        # and, for the upload form the client library uses with a media body,
        # https://developers.google.com/workspace/gmail/api/guides/uploads
        self.mailbox_for(request, account)
        await self._check_send_size(request)
        raw, thread_id = await self._outgoing(request)
        parsed = mime.parse_headers(raw)
        if not parsed.get_all("to") and not parsed.get_all("cc") and not parsed.get_all("bcc"):
            raise bad_request("Recipient address required")
        additions = []
        if not parsed.get("message-id"):
            additions.append(f"Message-ID: {email.utils.make_msgid(domain='mail.gmail.com')}")
        if not parsed.get("from"):
            additions.append(f"From: {account['email']}")
        if not parsed.get("date"):
            additions.append(f"Date: {email.utils.formatdate(time.time())}")
        if additions:
            raw = ("\r\n".join(additions) + "\r\n").encode() + raw
        summary = await asyncio.to_thread(mime.summary, raw)
        message = self.add_message(account, raw, ["SENT"], thread_id=thread_id, summary=summary, sent=True)
        self._deliver(account, raw, summary)
        return ok({"id": message["id"], "threadId": message["threadId"], "labelIds": list(message["labelIds"])})

    async def _check_send_size(self, request: Request) -> None:
        """messages.send's size limits. The body is read first (Starlette keeps it for the handler),
        so a client still sending gets the refusal rather than a connection closed under it."""
        size = len(await request.body())
        if not self.emulator.sandbox.limits_enabled:
            return
        if request.url.path.startswith("/upload/"):
            if size > SEND_UPLOAD_MAX_BYTES:
                # Reference: https://cloud.google.com/storage/docs/json_api/v1/status-codes (uploadTooLarge)
                raise ApiError(413, "uploadTooLarge", f"Media larger than {SEND_UPLOAD_MAX_BYTES} bytes.")
        elif size > SEND_JSON_MAX_BYTES:
            raise ApiError(400, "badRequest", f"Request payload size exceeds the limit: {SEND_JSON_MAX_BYTES} bytes.")

    def _deliver(self, sender: Json, raw: bytes, summary: Json) -> None:
        """Recipients that are sandbox Google mailboxes get the message in their Inbox."""
        addresses = {address for kind in ("to", "cc", "bcc") for address in summary["addresses"][kind]}
        for address in sorted(addresses):
            recipient = self.store.find_account("google", address)
            if recipient is not None and recipient["kind"] == "user" and recipient["id"] != sender["id"]:
                self.add_message(recipient, raw, ["INBOX", "UNREAD"], summary=summary)

    async def _outgoing(self, request: Request) -> tuple[bytes, str | None]:
        """The raw message and requested thread of a send call, plain JSON or an upload."""
        upload_type = request.query_params.get("uploadType")
        if not request.url.path.startswith("/upload/"):
            body = await json_body(request)
            if not body.get("raw"):
                raise bad_request("'raw' RFC822 payload message string or uploading message via /upload/* URL "
                                  "required")
            return b64url_decode(body["raw"]), body.get("threadId")
        content = await request.body()
        if upload_type == "media":
            return content, None
        if upload_type != "multipart":
            raise bad_request(f"Upload type {upload_type!r} is not supported here.", "badRequest")
        parts = mime.split_multipart(request.headers.get("content-type", ""), content)
        if len(parts) != 2:
            raise bad_request("Expected a multipart/related body with metadata and media.", "badRequest")
        metadata = json.loads(parts[0][1] or b"{}")
        return parts[1][1], metadata.get("threadId")

    async def list_history(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.history/list
        box = self.mailbox_for(request, account)
        start_text = request.query_params.get("startHistoryId", "")
        if not start_text.isdigit():
            raise bad_request("Missing or invalid startHistoryId", "invalidArgument")
        start = int(start_text)
        if start < box["history_floor"]:
            # Gmail's answer to a history id it no longer keeps: the client must do a full sync.
            raise not_found()
        types = request.query_params.getlist("historyTypes")
        unknown = [t for t in types if t not in HISTORY_TYPES]
        if unknown:
            raise bad_request(f"Invalid value at 'history_types' ({unknown[0]})", "invalidParameter")
        fields = [HISTORY_TYPES[t] for t in types] or list(HISTORY_TYPES.values())
        label_id = request.query_params.get("labelId")
        page_size = int_param(request, "maxResults", 100, high=500)
        after = start
        if request.query_params.get("pageToken"):
            token = request.query_params["pageToken"]
            if not token.isdigit():
                raise bad_request("Invalid pageToken", "invalidParameter")
            after = int(token)
        history = box["history"]
        position = bisect.bisect_right(history, after, key=lambda record: record["id"])
        records: list[Json] = []
        last_seen = after
        while position < len(history) and len(records) < page_size:
            record = history[position]
            position += 1
            last_seen = record["id"]
            if label_id and label_id not in record["labels"]:
                continue
            shown = {key: record[key] for key in fields if key in record}
            if shown:
                records.append({"id": str(record["id"]), "messages": record["messages"], **shown})
        body: Json = {"historyId": str(box["history_id"])}
        if records:
            body["history"] = records
        if position < len(history):
            body["nextPageToken"] = str(last_seen)
        return ok(body)

    async def watch(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/watch
        box = self.mailbox_for(request, account)
        body = await json_body(request)
        topic = body.get("topicName", "")
        if not isinstance(topic, str) or not TOPIC_NAME.fullmatch(topic):
            raise bad_request("Invalid topicName does not match projects/SOME_ANY_PROJECT_ID/topics/*")
        if self._push_config(topic) is None:
            raise not_found(f"Resource not found (resource={topic.rsplit('/', 1)[-1]}).")
        behavior = (body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include").lower()
        label_ids = list(body.get("labelIds") or [])
        for label_id in label_ids:
            if label_id not in box["labels"]:
                raise bad_request(f"Invalid label: {label_id}")
        expiration = now_ms() + WATCH_LIFETIME_MS
        box["watch"] = {"topicName": topic, "labelIds": label_ids, "labelFilterBehavior": behavior,
                        "expiration": expiration}
        return ok({"historyId": str(box["history_id"]), "expiration": str(expiration)})

    async def control_watch(self, request: Request) -> Response:
        """The mailbox's live watch (control API): its labels, or null once stopped or expired."""
        account = self.store.find_account("google", request.path_params["email"])
        if account is None:
            raise LookupError(f"no google account {request.path_params['email']}")
        watch = self.box(account)["watch"]
        return JSONResponse({"watch": watch if watch is not None and watch["expiration"] >= now_ms() else None})

    async def stop(self, request: Request, account: Json) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/stop
        self.mailbox_for(request, account)["watch"] = None
        return Response(status_code=204)


class SearchQuery:
    """The part of Gmail's search syntax a sync client uses.

    Reference: https://support.google.com/mail/answer/7190
    Terms are ANDed: from:, to:, cc:, subject:, label:, in:, is:unread|read|starred, has:attachment,
    after:/before: (YYYY/MM/DD or epoch seconds, against the arrival time), rfc822msgid:, and plain
    words matched against subject, sender, recipients and body text.
    """

    TERM = re.compile(r'(-?)(?:(\w+):)?("[^"]*"|\S+)')

    def __init__(self, text: str, box: Json, gmail: Gmail) -> None:
        self.checks: list[Any] = []
        self.asks_spam_trash = False
        for negate, operator, value in self.TERM.findall(text):
            check = self._check((operator or "").lower(), value.strip('"'), box, gmail)
            self.checks.append((lambda c: lambda m: not c(m))(check) if negate else check)

    def _check(self, operator: str, value: str, box: Json, gmail: Gmail) -> Any:
        lowered = value.lower()
        if operator in ("from", "to", "cc", "bcc"):
            return lambda m: any(lowered in address for address in m["summary"]["addresses"][operator])
        if operator == "subject":
            return lambda m: lowered in m["summary"]["subject"].lower()
        if operator in ("label", "in"):
            if lowered == "anywhere":
                self.asks_spam_trash = True
                return lambda m: True
            value = LABEL_WORDS.get(lowered, value)
            label = gmail.find_label(box, value) or gmail.find_label(box, value.replace("-", " "))
            if label is None:
                return lambda m: False
            if label["id"] in ("SPAM", "TRASH"):
                self.asks_spam_trash = True
            return lambda m: label["id"] in m["labelIds"]
        if operator == "is":
            wanted = {"unread": ("UNREAD", True), "read": ("UNREAD", False), "starred": ("STARRED", True),
                      "important": ("IMPORTANT", True)}.get(lowered)
            if wanted is None:
                raise bad_request(f"Invalid search term is:{value}")
            return lambda m: (wanted[0] in m["labelIds"]) == wanted[1]
        if operator == "has" and lowered == "attachment":
            return lambda m: m["summary"]["has_attachment"]
        if operator in ("after", "before", "newer", "older"):
            moment = self._epoch_ms(value)
            if operator in ("after", "newer"):
                return lambda m: m["internalDate"] >= moment
            return lambda m: m["internalDate"] < moment
        if operator == "rfc822msgid":
            return lambda m: m["summary"]["message_id"].strip("<>").lower() == lowered.strip("<>")
        word = f"{operator}:{lowered}" if operator else lowered
        return lambda m: word in m["summary"]["search_text"]

    @staticmethod
    def _epoch_ms(value: str) -> int:
        if value.isdigit():
            return int(value) * 1000
        try:
            day = dt.datetime.strptime(value.replace("-", "/"), "%Y/%m/%d").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise bad_request(f"Invalid date in search: {value}") from exc
        return int(day.timestamp() * 1000)

    def matches(self, message: Json) -> bool:
        return all(check(message) for check in self.checks)
