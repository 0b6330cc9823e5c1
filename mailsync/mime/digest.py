"""The digest that recognises one email without a Message-ID, in any mailbox, and nothing else.

Copies of one email in two mailboxes are not the same bytes. Each provider adds trace and
filtering headers on delivery (Received, Return-Path, Delivered-To, Authentication-Results, ARC-*,
X-Gm-*, X-MS-Exchange-*, Thread-Topic, Thread-Index, Content-Language, X-MS-Has-Attach), and
Exchange does not keep the MIME at all: Graph's $value builds it afresh, with new boundaries,
transfer encodings, header folding and encoded words, and a Bcc only in the sender's copy.
Reference: https://learn.microsoft.com/en-us/graph/outlook-get-mime-message

What survives is what the author wrote: the addresses (not their display names, which a directory
may fill in), the instant it was sent, the subject and threading headers, the body as a person
reads it, and the bytes of every attachment. That is what the digest covers, and nothing else, so
two messages that differ in any of it (one attachment, the HTML, one recipient) never meet.

Exchange keeps one body per message: beside an HTML body, the text/plain alternative it serves is
its own rendering of the HTML, not the sender's text. So the body is the HTML's text when there is
HTML, and the plain text otherwise.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import unicodedata
from collections.abc import Iterable

from .values import Address


def content_digest(
    *,
    from_: Iterable[Address],
    to: Iterable[Address],
    cc: Iterable[Address],
    reply_to: Iterable[Address],
    subject: str,
    date: datetime.datetime | None,
    in_reply_to: Iterable[str],
    references: Iterable[str],
    body: str,
    attachment_digests: Iterable[str],
) -> str:
    fields = {
        "from": _addresses(from_),
        "to": _addresses(to),
        "cc": _addresses(cc),
        "reply-to": _addresses(reply_to),
        "subject": _normal(subject),
        "date": date.astimezone(datetime.UTC).isoformat() if date else "",
        "in-reply-to": [value.lower() for value in in_reply_to],
        "references": [value.lower() for value in references],
        # Mail systems re-wrap text and change line ends: only the words and their order count.
        "body": _normal(body),
        "attachments": sorted(attachment_digests),
    }
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _addresses(addresses: Iterable[Address]) -> list[str]:
    # A set: the order of recipients is not what makes two messages different.
    return sorted({address.email.lower() if address.email else _normal(address.name).lower() for address in addresses})


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))
