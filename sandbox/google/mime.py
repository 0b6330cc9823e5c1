"""Turn stored RFC 5322 bytes into Gmail's ``MessagePart`` tree and search fields."""

from __future__ import annotations

import base64
import email
import email.errors
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from typing import Any

from ..mailtext import decoded, first, raw_headers, readable
from ..mailtext import parse as parse_leniently
from .common import Json, b64url

SNIPPET_LENGTH = 200
SEARCH_TEXT_LIMIT = 20_000


@dataclass
class ParsedMessage:
    payload: Json
    attachments: dict[str, bytes] = field(default_factory=dict)  # attachmentId -> decoded bytes


def parse(raw: bytes) -> email.message.Message:
    # compat32 keeps header values as written, which is what Gmail returns in ``headers``.
    return parse_leniently(raw, email.policy.compat32)


def parse_headers(raw: bytes) -> email.message.Message:
    """Only the top-level headers, without reading through the body."""
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body as (lower-cased headers, exact body bytes).

    Done by hand rather than with the email parser, which would parse a message/rfc822 part into
    a nested message and lose its original bytes.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return []
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk[1:] if chunk.startswith(b"\n") else chunk
        chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if chunk.endswith(b"\n") else chunk
        head, content = split_head(chunk)
        headers = {}
        for line in re.split(rb"\r?\n", head):
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if headers.get("content-transfer-encoding", "").lower() == "base64":
            content = base64.b64decode(content)
        parts.append((headers, content))
    return parts


def split_head(chunk: bytes) -> tuple[bytes, bytes]:
    """Headers and body of an HTTP or MIME chunk, whichever line ending it uses."""
    crlf, lf = chunk.find(b"\r\n\r\n"), chunk.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf):
        return chunk[:crlf], chunk[crlf + 4:]
    if lf != -1:
        return chunk[:lf], chunk[lf + 2:]
    return chunk, b""


def part_bytes(part: Any) -> bytes:
    """A leaf part's body with its transfer encoding undone."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def sub_parts(part: Any) -> list[Any]:
    children = part.get_payload()
    return children if part.is_multipart() and isinstance(children, list) else []


def unfold(value: Any) -> str:
    return re.sub(r"(?:\r\n|\r|\n)[ \t]+", " ", readable(value)).strip()


header = first


def all_headers(message: email.message.Message, name: str) -> list[str]:
    name = name.lower()
    return [value for key, value in raw_headers(message) if key.lower() == name]


decoded_header = decoded


def body_text(message: email.message.Message) -> str:
    """The first text/plain (else text/html with tags stripped) body, for snippets and search."""
    fallback = ""
    for part in message.walk():
        if part.is_multipart() or part.get_filename():
            continue
        content_type = part.get_content_type()
        if content_type not in ("text/plain", "text/html"):
            continue
        try:
            text = part_bytes(part).decode(part.get_content_charset() or "utf-8", errors="replace")
        except LookupError:  # an unknown charset
            text = part_bytes(part).decode("utf-8", errors="replace")
        if content_type == "text/plain":
            return text
        fallback = fallback or re.sub(r"<[^>]+>", " ", text)
    return fallback


def summary(raw: bytes) -> Json:
    """What messages.list filters on and messages.get repeats, computed once when mail arrives."""
    message = parse(raw)
    text = readable(body_text(message))
    addresses = {
        name: [address.lower() for _, address in
               email.utils.getaddresses([decoded_header(value) for value in all_headers(message, name)])]
        for name in ("from", "to", "cc", "bcc")
    }
    subject = decoded_header(header(message, "subject"))
    return {
        "subject": subject,
        "addresses": addresses,
        "message_id": unfold(header(message, "message-id") or ""),
        "in_reply_to": unfold(header(message, "in-reply-to") or ""),
        "references": unfold(header(message, "references") or "").split(),
        "snippet": " ".join(text.split())[:SNIPPET_LENGTH],
        "has_attachment": any(part.get_filename() for part in message.walk() if not part.is_multipart()),
        "search_text": " ".join([subject, decoded_header(header(message, "from")),
                                 decoded_header(header(message, "to")), text[:SEARCH_TEXT_LIMIT]]).lower(),
    }


def payload_tree(message_id: str, raw: bytes) -> ParsedMessage:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages#MessagePart
    parsed = ParsedMessage(payload={})

    def build(part: email.message.Message, part_id: str) -> Json:
        node: Json = {
            "partId": part_id,
            "mimeType": part.get_content_type(),
            "filename": decoded_header(part.get_filename()) if part.get_filename() else "",
            "headers": [{"name": name, "value": value.strip()} for name, value in raw_headers(part)],
        }
        if part.is_multipart():
            node["body"] = {"size": 0}
            prefix = f"{part_id}." if part_id else ""
            node["parts"] = [build(child, f"{prefix}{index}") for index, child in enumerate(sub_parts(part))]
            return node
        data = part_bytes(part)
        if node["filename"]:
            attachment_id = b64url(f"{message_id}/{part_id}".encode()).rstrip("=")
            parsed.attachments[attachment_id] = data
            node["body"] = {"attachmentId": attachment_id, "size": len(data)}
        else:
            node["body"] = {"size": len(data), "data": b64url(data)} if data else {"size": 0}
        return node

    try:
        parsed.payload = build(parse(raw), "")
    except RecursionError:
        # Parts nested too deep to walk: the message is still served whole, as raw.
        parsed.attachments.clear()
        parsed.payload = build(parse_headers(raw), "")
    return parsed
