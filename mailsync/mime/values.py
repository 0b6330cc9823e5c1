"""What the parser hands the capture pipeline: plain values, and the key that recognises one email."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .text import message_ids


class UnparseableMessage(ValueError):
    """Nothing useful could be read from the input at all."""


@dataclass(frozen=True)
class Address:
    """One recipient or sender as the header gives it.

    `email` is the address, lower-cased, when the header has one. An entry without a domain (a bare
    name, "Name <localpart>", an empty group such as "undisclosed-recipients:;") is kept as written:
    its name and local part, and an empty or domainless `email`.
    """

    name: str
    email: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content_id: str
    # True for an image the HTML body shows through a cid: reference; the view renders it in place
    # rather than listing it, so a part that nothing references is never marked inline.
    inline: bool
    path: Path
    sha256: str


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime.datetime | None
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    text_body: str
    html_body: str
    attachments: tuple[ParsedAttachment, ...]
    problems: tuple[str, ...]
    size: int
    # A digest of what makes the message itself (see `digest.content_digest`).
    content_digest: str = ""

    def participants(self) -> set[str]:
        """Every address in the message that can belong to a contact (one with a domain)."""
        senders = (self.from_,) if self.from_ else ()
        everyone = (*senders, *self.to, *self.cc, *self.bcc, *self.reply_to)
        return {address.email.lower() for address in everyone if "@" in address.email}

    def dedupe_key(self) -> str:
        """The same email captured from two mailboxes gives the same key; distinct mail never does.

        With a Message-ID that is the key. Without one, it is the digest of everything that makes the
        message itself and survives the trip into any mailbox: its addresses, date, subject and
        threading headers, its body and every attachment's content.
        """
        if self.message_id:
            return dedupe_key_for_message_id(self.message_id)
        return "digest:" + self.content_digest


def dedupe_key_for_message_id(message_id: str) -> str:
    """The `dedupe_key` of any email with this Message-ID, written with or without its angle brackets.

    Mail sent from Aspire is recorded under the same key, so capturing it later finds that record.
    """
    ids = message_ids(message_id)
    return "mid:" + ids[0].lower() if ids else ""


def reply_keys(in_reply_to: str, references: Iterable[str]) -> list[str]:
    """The dedupe keys of the emails a message replies to (In-Reply-To, then References)."""
    return [key for ref in (in_reply_to, *references) if (key := dedupe_key_for_message_id(ref))]


class Notes:
    """The `problems` list: in order of discovery, each said once."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, note: str) -> None:
        self._items.setdefault(note, None)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._items)
