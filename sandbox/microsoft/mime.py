"""Reading stored RFC 5322 mail into Graph message fields, and building MIME for mail sent through Graph."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.policy
import hashlib
import html
import re
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parsedate_to_datetime
from typing import Any

from ..mailtext import decoded, first, parse, without_surrogates
from .common import Json, bad_request, iso_z

PREVIEW_LENGTH = 255


def _recipients(message: EmailMessage, header: str) -> list[Json]:
    value = message.get(header)
    if value is None:
        return []
    try:
        addresses = value.addresses
    except (AttributeError, ValueError):
        return []
    return [
        {"emailAddress": {"name": address.display_name or address.addr_spec, "address": address.addr_spec}}
        for address in addresses
        if address.addr_spec
    ]


def _text_of(content: str, content_type: str) -> str:
    if content_type == "html":
        content = html.unescape(re.sub(r"(?s)<(style|script)[^>]*>.*?</\1>|<[^>]+>", " ", content))
    return " ".join(content.split())


def conversation_id(thread_root: str) -> str:
    # Messages of one thread share the id Exchange derives from the thread's first message.
    return "AAQk" + hashlib.sha256(thread_root.encode("utf-8")).hexdigest()[:40]


def conversation_index(thread_root: str, depth: int) -> str:
    """Outlook's PidTagConversationIndex, base64: a 22-byte header (a reserved byte, the thread's
    start time and a GUID, here both derived from the thread's first Message-ID, so every message
    of a thread shares it) and a 5-byte block for each reply below it."""
    # Reference: https://learn.microsoft.com/en-us/office/client-developer/outlook/mapi/tracking-conversations
    digest = hashlib.sha256(thread_root.encode("utf-8")).digest()
    header = b"\x01" + digest[16:21] + digest[:16]
    blocks = b"".join(hashlib.sha256(f"{thread_root}/{level}".encode()).digest()[:5] for level in range(depth))
    return base64.b64encode(header + blocks).decode("ascii")


def parse_mime(raw: bytes, *, received: dt.datetime) -> Json:
    """The Graph message fields that come from the MIME itself, as text JSON can carry."""
    return without_surrogates(_fields(parse(raw, email.policy.default), received))  # type: ignore[no-any-return]


def _fields(message: Any, received: dt.datetime) -> Json:
    assert isinstance(message, EmailMessage)
    try:
        body_part = message.get_body(preferencelist=("html", "plain"))
    except (RecursionError, AttributeError):  # parts nested too deep to parse: only the headers were
        body_part = None
    content, content_type = "", "text"
    if body_part is not None:
        content_type = "html" if body_part.get_content_subtype() == "html" else "text"
        try:
            content = body_part.get_content()
        except (LookupError, ValueError):
            # An unknown charset: show the bytes as UTF-8 rather than fail the whole message.
            payload = body_part.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    try:
        sent = parsedate_to_datetime(str(message["Date"])) if message["Date"] else received
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        sent = received
    message_id = str(message.get("Message-ID", "")).strip() or make_msgid(domain="sandbox.invalid")
    references = str(message.get("References", "")).split()
    thread_root = references[0] if references else str(message.get("In-Reply-To", "")).strip() or message_id
    senders = _recipients(message, "From")
    return {
        "subject": decoded(first(message, "subject")),
        "from": senders[0] if senders else None,
        "sender": senders[0] if senders else None,
        "toRecipients": _recipients(message, "To"),
        "ccRecipients": _recipients(message, "Cc"),
        "bccRecipients": _recipients(message, "Bcc"),
        "replyTo": _recipients(message, "Reply-To"),
        "sentDateTime": iso_z(sent),
        "receivedDateTime": iso_z(received),
        "internetMessageId": message_id,
        "conversationId": conversation_id(thread_root),
        "conversationIndex": conversation_index(thread_root, len(references)),
        "bodyPreview": _text_of(content, content_type)[:PREVIEW_LENGTH],
        "body": {"contentType": content_type, "content": content},
        "hasAttachments": message.is_multipart() and any(True for _ in message.iter_attachments()),
    }


def _address_list(recipients: Any) -> str:
    if not recipients:
        return ""
    if not isinstance(recipients, list):
        raise bad_request("Recipients must be a list.", "ErrorInvalidRecipients")
    formatted = []
    for recipient in recipients:
        address = (recipient or {}).get("emailAddress", {}).get("address", "")
        if "@" not in address:
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        formatted.append(formataddr((recipient["emailAddress"].get("name") or "", address)))
    return ", ".join(formatted)


def build_mime(message: Json, *, sender: Json) -> bytes:
    """MIME for a Graph message resource (sendMail / a draft), sent as the signed-in mailbox."""
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/message
    mime = EmailMessage()
    mime["From"] = formataddr((sender["display_name"], sender["email"]))
    for header, key in (("To", "toRecipients"), ("Cc", "ccRecipients"), ("Bcc", "bccRecipients"),
                        ("Reply-To", "replyTo")):
        value = _address_list(message.get(key))
        if value:
            mime[header] = value
    mime["Subject"] = str(message.get("subject") or "")
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender["email"].split("@")[1])
    for header in message.get("internetMessageHeaders") or []:
        name = str(header.get("name", ""))
        # Graph only lets clients add custom x- headers.
        if not name.lower().startswith("x-"):
            raise bad_request("Only headers starting with 'x-' can be added.", "InvalidInternetMessageHeader")
        mime[name] = str(header.get("value", ""))
    body = message.get("body") or {}
    subtype = "html" if str(body.get("contentType", "text")).lower() == "html" else "plain"
    mime.set_content(str(body.get("content", "")), subtype=subtype)
    for attachment in message.get("attachments") or []:
        if attachment.get("@odata.type", "").lower() != "#microsoft.graph.fileattachment":
            raise bad_request("Only file attachments are supported.", "ErrorInvalidAttachmentType")
        try:
            data = base64.b64decode(attachment.get("contentBytes", ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request("The attachment content is not valid base64.") from exc
        maintype, _, subtype = str(attachment.get("contentType") or "application/octet-stream").partition("/")
        mime.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=str(attachment.get("name") or "attachment"))
    return mime.as_bytes()


def complete_mime(raw: bytes, *, sender: Json) -> bytes:
    """MIME posted to sendMail as-is: Exchange stamps the headers a client may leave out."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    missing = {
        "From": lambda: formataddr((sender["display_name"], sender["email"])),
        "Date": lambda: formatdate(usegmt=True),
        "Message-ID": lambda: make_msgid(domain=sender["email"].split("@")[1]),
    }
    added = False
    for header, value in missing.items():
        if message[header] is None:
            message[header] = value()
            added = True
    # Re-serialise only when something was stamped, so the client's bytes are otherwise kept as sent.
    return message.as_bytes() if added else raw

