"""Attachments added to an Outlook message after it was created: a file attachment in one request,
or a large one through an upload session of byte ranges, and the message's MIME with them.

Graph refuses request bodies over 4 MB, so a file of 3 MB or more (150 MB at most) is attached
with an upload session: ``createUploadSession`` on the message answers an opaque, pre-authorised
``uploadUrl`` on Outlook's own REST endpoint, where the client PUTs the file's bytes in order, up
to 4 MB a request; the last one answers 201 with the attachment's ``Location``.

State per account: ``upload_sessions``: session id -> {token, message (immutable id), name, size,
contentType, isInline, contentId, expires (epoch seconds), next (the next byte expected), chunks}.
Attachments waiting on a message (a draft, typically) are its record's ``attachments``: a list of
{id, name, contentType, size, isInline, contentId, lastModifiedDateTime, data}; they join its MIME
when it is sent or its ``$value`` is read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.policy
import math
import re
import secrets
import time
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import GRAPH_MAX_REQUEST_BYTES
from ..errors import graph_error
from .common import (
    GraphError,
    Json,
    bad_request,
    context,
    data_of,
    graph,
    graph_json,
    iso_z,
    json_body,
    new_graph_id,
    not_found,
    utc_now,
)

if TYPE_CHECKING:
    from ..app import Sandbox
    from .mail import Mail

# Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments
# Reference: https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
UPLOAD_SESSION_MIN_BYTES = 3_000_000  # "between 3 MB and 150 MB"
UPLOAD_SESSION_MAX_BYTES = 150 * 1024 * 1024
UPLOAD_CHUNK_MAX_BYTES = GRAPH_MAX_REQUEST_BYTES  # "up to 4 MB each time"
UPLOAD_SESSION_LIFETIME = 2 * 3600
# Exchange Online's default message size limit, attachments (as encoded in the MIME) included.
# Reference: https://learn.microsoft.com/en-us/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#message-limits
MAX_MESSAGE_BYTES = 35 * 1024 * 1024
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
SESSION_PATH = "/api/v2.0/Users('{user}')/Messages('{message}')/AttachmentSessions('{session}')"
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"


def encoded_size(size: int) -> int:
    """How many bytes ``size`` bytes take in a MIME message: base64 in lines of 76 and a CRLF."""
    encoded = 4 * math.ceil(size / 3)
    return encoded + 2 * math.ceil(encoded / 76)


def message_too_large() -> GraphError:
    # The code and message Exchange answers a message over its size limit with.
    return GraphError(400, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")


def with_attachments(raw: bytes, attachments: list[Json]) -> bytes:
    """The message's MIME with its waiting attachments added as parts of their own."""
    if not attachments:
        return raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for attachment in attachments:
        maintype, _, subtype = str(attachment["contentType"]).partition("/")
        extra: dict[str, Any] = {"cid": f"<{attachment['contentId']}>"} if attachment.get("contentId") else {}
        message.add_attachment(attachment["data"], maintype=maintype or "application",
                               subtype=subtype or "octet-stream", filename=attachment["name"],
                               disposition="inline" if attachment["isInline"] else "attachment", **extra)
    return message.as_bytes(policy=email.policy.SMTP)


class Attachments:
    def __init__(self, sandbox: Sandbox, mail: Mail) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.mail = mail

    def graph_routes(self) -> list[BaseRoute]:
        message = "/v1.0/me/messages/{message_id}"
        return [
            Route(message + "/attachments", self.add_attachment, methods=["POST"]),
            Route(message + "/attachments/createUploadSession", self.create_upload_session, methods=["POST"]),
        ]

    def upload_routes(self) -> list[BaseRoute]:
        """The upload URLs, on Outlook's endpoint: authorised by their ``authtoken``, not a bearer
        token, so they are not Graph routes (and cannot be steps of a Graph $batch)."""
        return [Route(SESSION_PATH, self.upload, methods=["PUT", "DELETE"])]

    # -- a file attachment in one request ----------------------------------------------------
    @graph("attachments.add")
    async def add_attachment(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-post-attachments
        record = self.mail.message_record(data_of(account), request.path_params["message_id"])
        spec = await json_body(request)
        if str(spec.get("@odata.type", "")).lower() != FILE_ATTACHMENT.lower():
            raise bad_request("Only file attachments (#microsoft.graph.fileAttachment) are emulated.",
                              "ErrorInvalidAttachmentType")
        name = str(spec.get("name") or "").strip()
        if not name:
            raise bad_request("The attachment needs a name.", "ErrorInvalidRequest")
        try:
            content = base64.b64decode(str(spec.get("contentBytes") or ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request("The attachment's contentBytes is not valid base64.") from exc
        self.check_message_size(record, len(content))
        attachment = self.attach(account, record, name=name, content=content,
                                 content_type=str(spec.get("contentType") or "application/octet-stream"),
                                 is_inline=bool(spec.get("isInline")), content_id=spec.get("contentId"))
        return graph_json({
            "@odata.context": context(self.sandbox, f"users('{account['id']}')/messages('{record['id']}')"
                                                    "/attachments/$entity"),
            **self.attachment_json(attachment),
            "contentBytes": base64.b64encode(content).decode("ascii"),
        }, status=201)

    def attach(self, account: Json, record: Json, *, name: str, content: bytes, content_type: str,
               is_inline: bool, content_id: Any) -> Json:
        attachment = {
            "id": new_graph_id("AAMkADAtt"), "name": name, "contentType": content_type, "size": len(content),
            "isInline": is_inline, "contentId": str(content_id) if content_id else None,
            "lastModifiedDateTime": iso_z(utc_now()), "data": content,
        }
        record.setdefault("attachments", []).append(attachment)
        record["fields"]["hasAttachments"] = True
        self.mail.touch(account, record)
        return attachment

    @staticmethod
    def attachment_json(attachment: Json) -> Json:
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/fileattachment
        return {
            "@odata.type": FILE_ATTACHMENT, "@odata.mediaContentType": attachment["contentType"],
            "id": attachment["id"], "lastModifiedDateTime": attachment["lastModifiedDateTime"],
            "name": attachment["name"], "contentType": attachment["contentType"], "size": attachment["size"],
            "isInline": attachment["isInline"], "contentId": attachment["contentId"], "contentLocation": None,
        }

    def check_message_size(self, record: Json, adding: int) -> None:
        """Refuse an attachment that would take the message over Exchange's size limit."""
        if not self.sandbox.limits_enabled:
            return
        total = len(record["raw"]) + sum(encoded_size(a["size"]) for a in record.get("attachments", []))
        if total + encoded_size(adding) > MAX_MESSAGE_BYTES:
            raise message_too_large()

    # -- upload sessions -------------------------------------------------------------------------
    @graph("attachments.createUploadSession")
    async def create_upload_session(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
        data = data_of(account)
        record = self.mail.message_record(data, request.path_params["message_id"])
        spec = await json_body(request)
        item = next((v for k, v in spec.items() if k.lower() == "attachmentitem"), None)
        if not isinstance(item, dict):
            raise bad_request("The AttachmentItem parameter is required.", "ErrorInvalidRequest")
        if str(item.get("attachmentType", "")).lower() != "file":
            raise bad_request("AttachmentItem.attachmentType must be 'file'.", "ErrorInvalidRequest")
        name = str(item.get("name") or "").strip()
        size = item.get("size")
        if not name or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request("AttachmentItem needs a name and a size in bytes.", "ErrorInvalidRequest")
        if size < UPLOAD_SESSION_MIN_BYTES:
            # Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments#errors
            raise bad_request("Attachment size must be greater than the minimum size.",
                              "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
        if size > UPLOAD_SESSION_MAX_BYTES:
            raise bad_request("An upload session attaches files of 150 MB at most.", "ErrorAttachmentSizeExceeded")
        self.check_message_size(record, size)
        session_id = new_graph_id("AAMkADSes")
        expires = time.time() + UPLOAD_SESSION_LIFETIME
        data.setdefault("upload_sessions", {})[session_id] = {
            "token": secrets.token_urlsafe(32), "message": record["immutableId"], "name": name, "size": size,
            "contentType": str(item.get("contentType") or "application/octet-stream"),
            "isInline": bool(item.get("isInline")), "contentId": item.get("contentId"), "expires": expires,
            "next": 0, "chunks": [],
        }
        return graph_json({
            "@odata.context": context(self.sandbox, "microsoft.graph.uploadSession"),
            "uploadUrl": self.upload_url(account, record, session_id),
            "expirationDateTime": self.stamp(expires),
            "nextExpectedRanges": ["0-"],
        }, status=201)

    def upload_url(self, account: Json, record: Json, session_id: str) -> str:
        session = data_of(account)["upload_sessions"][session_id]
        path = SESSION_PATH.format(user=f"{account['id']}@{account['tenant_id']}", message=record["id"],
                                   session=session_id)
        return f"{self.sandbox.base_url}{path}?authtoken={session['token']}"

    @staticmethod
    def stamp(epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")

    def find_session(self, request: Request) -> tuple[Json, Json, str]:
        """The session a PUT or DELETE names, after checking its ``authtoken``."""
        request.scope["state"]["operation"] = "attachments.upload"
        user = request.path_params["user"].partition("@")[0]
        account = self.store.accounts.get(user)
        session_id = request.path_params["session"]
        session = data_of(account).get("upload_sessions", {}).get(session_id) if account else None
        if account is None or session is None:
            raise not_found("The upload session was not found.")
        request.scope["state"]["account"] = account
        token = request.query_params.get("authtoken", "")
        if not secrets.compare_digest(token.encode(), session["token"].encode()) or session["expires"] < time.time():
            raise GraphError(401, "InvalidAuthenticationToken", "The upload session's authtoken is invalid or expired.")
        return account, session, session_id

    async def upload(self, request: Request) -> Response:
        """One byte range of the file, in order; the last answers 201 with the attachment's Location."""
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments#step-2-use-the-upload-session-to-upload-a-range-of-bytes-of-the-file
        try:
            account, session, session_id = self.find_session(request)
            if request.method == "DELETE":
                # Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments#alternative-cancel-the-upload-session
                del data_of(account)["upload_sessions"][session_id]
                return Response(status_code=204)
            return await self.take_range(request, account, session, session_id)
        except GraphError as exc:
            return graph_error(exc.status, exc.code, exc.message)

    async def take_range(self, request: Request, account: Json, session: Json, session_id: str) -> Response:
        body = await request.body()  # read first, so a refusal reaches a client still sending
        match = CONTENT_RANGE.fullmatch(request.headers.get("content-range", "").strip())
        if match is None:
            raise bad_request("A Content-Range header of the form 'bytes {start}-{end}/{total}' is required.",
                              "ErrorInvalidContentRange")
        start, end, total = (int(group) for group in match.groups())
        if total != session["size"]:
            raise bad_request(f"The Content-Range total {total} is not the size the session was created with "
                              f"({session['size']}).", "ErrorInvalidContentRange")
        if end < start or end >= total:
            raise bad_request(f"The Content-Range bytes {start}-{end} are not a range of the file.",
                              "ErrorInvalidContentRange")
        if end - start + 1 > UPLOAD_CHUNK_MAX_BYTES:
            raise GraphError(413, "BadRequest", "Upload byte ranges of 4 MB at most.")
        if start != session["next"]:
            # "You must upload bytes in a file in order."
            raise GraphError(416, "ErrorInvalidRange", f"The next range expected starts at byte {session['next']}.")
        if len(body) != end - start + 1:
            raise bad_request(f"The body holds {len(body)} bytes where the Content-Range names {end - start + 1}.",
                              "ErrorInvalidContentRange")
        session["chunks"].append(body)
        session["next"] = end + 1
        data = data_of(account)
        if session["next"] < session["size"]:
            return JSONResponse({
                "@odata.context": f"{self.sandbox.base_url}/api/v2.0/$metadata#Users('{account['id']}')"
                                  f"/Messages('{request.path_params['message']}')/AttachmentSessions/$entity",
                "ExpirationDateTime": self.stamp(session["expires"]),
                "nextExpectedRanges": [str(session["next"])],
            })
        del data["upload_sessions"][session_id]
        record = data["messages"].get(session["message"])
        if record is None:
            raise not_found("The message the upload session belongs to no longer exists.")
        attachment = self.attach(account, record, name=session["name"], content=b"".join(session["chunks"]),
                                 content_type=session["contentType"], is_inline=session["isInline"],
                                 content_id=session["contentId"])
        location = (f"{self.sandbox.base_url}/api/v2.0/Users('{account['id']}@{account['tenant_id']}')"
                    f"/Messages('{request.path_params['message']}')/Attachments('{attachment['id']}')")
        return Response(status_code=201, headers={"Location": location, "Content-Length": "0"})
