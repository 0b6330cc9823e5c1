"""Fitting outgoing mail into Graph's request limits.

Graph takes request bodies of 4 MB at most, and ``sendMail`` carries the whole MIME, base64, in
one request, so only mail under about 3 MB goes out that way. Larger mail is sent as a draft made
from its MIME without the attachments that do not fit, those attachments added one by one (an
upload session for a file of 3 MB or more, a single request for a smaller one), and the draft
sent. This module decides what goes where; the Graph calls are in ``provider.py``.
"""

from __future__ import annotations

import base64
import email
import email.policy
import math
from dataclasses import dataclass
from email.message import EmailMessage, Message

from ..errors import ProviderError

# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages (4 MB, else 413)
# Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments
REQUEST_MAX_BYTES = 4 * 1024 * 1024
# What a JSON attachment request or a draft's headers add to the encoded bytes, with room to spare.
REQUEST_OVERHEAD_BYTES = 16 * 1024
# "If the file size is between 3 MB and 150 MB, create an upload session"; smaller files are
# attached in one request, which stays under the 4 MB limit once base64-encoded.
UPLOAD_SESSION_MIN_BYTES = 3_000_000
# "Upload ranges of bytes (up to 4 MB each time)".
UPLOAD_CHUNK_BYTES = 3 * 1024 * 1024
TOO_LARGE = ("This message's text is too large to send through Microsoft 365, which takes at most 4 MB in "
             "one request. Shorten it, or send the content as an attachment.")


def base64_size(size: int) -> int:
    return 4 * math.ceil(size / 3)


def fits_one_request(mime: bytes) -> bool:
    """Whether ``sendMail`` (or creating a draft) can carry this MIME, base64-encoded, in one request."""
    return base64_size(len(mime)) <= REQUEST_MAX_BYTES - REQUEST_OVERHEAD_BYTES


@dataclass(frozen=True)
class Attachment:
    """An attachment taken out of the MIME, to be added to the draft on its own."""

    filename: str
    content_type: str
    content: bytes
    inline: bool
    content_id: str

    @property
    def needs_upload_session(self) -> bool:
        return len(self.content) >= UPLOAD_SESSION_MIN_BYTES

    def as_file_attachment(self) -> dict[str, object]:
        # Reference: https://learn.microsoft.com/en-us/graph/api/message-post-attachments
        body: dict[str, object] = {
            "@odata.type": "#microsoft.graph.fileAttachment", "name": self.filename,
            "contentType": self.content_type, "isInline": self.inline,
            "contentBytes": base64.b64encode(self.content).decode("ascii"),
        }
        if self.content_id:
            body["contentId"] = self.content_id
        return body

    def as_attachment_item(self) -> dict[str, object]:
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/attachmentitem
        item: dict[str, object] = {"attachmentType": "file", "name": self.filename, "size": len(self.content),
                                   "contentType": self.content_type, "isInline": self.inline}
        if self.content_id:
            item["contentId"] = self.content_id
        return item


@dataclass(frozen=True)
class LargeMessage:
    """A message too large for one request: the draft's MIME, and the attachments to add to it."""

    draft_mime: bytes
    attachments: tuple[Attachment, ...]
    message_id: str


def split_attachments(mime: bytes) -> LargeMessage:
    """Take the largest attachments out of the message until the rest fits one request; the
    smaller ones stay in the draft's MIME, which saves a request each. The message's headers,
    its Message-ID first, stay in the draft. Raises ProviderError when even the message without
    its attachments is over the limit."""
    message = email.message_from_bytes(mime, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message_id = str(message.get("Message-ID", "")).strip()
    parts = message.get_payload() if message.is_multipart() else []
    attachments = list(message.iter_attachments())
    sizes = {id(part): len(part.as_bytes(policy=email.policy.SMTP)) for part in attachments}
    remaining = len(mime)
    taken: list[Message] = []
    for part in sorted(attachments, key=lambda candidate: sizes[id(candidate)], reverse=True):
        if base64_size(remaining) <= REQUEST_MAX_BYTES - REQUEST_OVERHEAD_BYTES:
            break
        taken.append(part)
        remaining -= sizes[id(part)]
    if taken:
        assert isinstance(parts, list)
        message.set_payload([part for part in parts if all(part is not out for out in taken)])
    draft_mime = message.as_bytes(policy=email.policy.SMTP)
    if not fits_one_request(draft_mime):
        raise ProviderError(f"message of {len(mime)} bytes: {len(draft_mime)} without its attachments",
                            user_message=TOO_LARGE)
    in_order = [part for part in attachments if any(part is out for out in taken)]
    return LargeMessage(draft_mime=draft_mime, attachments=tuple(_attachment(part) for part in in_order),
                        message_id=message_id)


def _attachment(part: Message) -> Attachment:
    payload = part.get_payload(decode=True)
    return Attachment(
        filename=part.get_filename() or "attachment",
        content_type=part.get_content_type(),
        content=payload if isinstance(payload, bytes) else b"",
        inline=part.get_content_disposition() == "inline",
        content_id=str(part.get("Content-ID", "")).strip().strip("<>"),
    )
