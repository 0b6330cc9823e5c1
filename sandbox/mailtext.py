"""Stored mail as text for the emulators' JSON answers, whatever bytes the message holds.

Mail is stored and served byte for byte (raw 8-bit headers, CR-only line ends, odd charsets and
all); only the fields the APIs derive from it (subject, addresses, snippets) are text, and a JSON
answer cannot carry the surrogate escapes Python's parser uses for undecodable bytes.
"""

from __future__ import annotations

import email.errors
import email.header
import email.message
import email.parser
import email.policy
import re
from typing import Any

_SURROGATES = re.compile(r"[\udc80-\udcff]")


def readable(value: Any) -> str:
    """A header value or body text with raw 8-bit bytes read as UTF-8, else Windows-1252."""
    text = value if isinstance(value, str) else str(value)
    if not _SURROGATES.search(text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def without_surrogates(data: Any) -> Any:
    """The same JSON value, every string in it readable."""
    if isinstance(data, str):
        return readable(data)
    if isinstance(data, dict):
        return {key: without_surrogates(value) for key, value in data.items()}
    if isinstance(data, list):
        return [without_surrogates(value) for value in data]
    return data


def parse(raw: bytes, policy: email.policy.Policy) -> email.message.Message:
    """The whole message, or only its headers when the parts nest too deep to parse at all."""
    try:
        return email.message_from_bytes(raw, policy=policy)
    except RecursionError:
        return email.parser.BytesHeaderParser(policy=policy).parsebytes(raw)


def raw_headers(message: email.message.Message) -> list[tuple[str, str]]:
    """(name, value) as written, unfolded, readable: never compat32's Header objects."""
    return [(name, readable(re.sub(r"\r?\n(?=[ \t])|\r(?=[ \t])", "", value if isinstance(value, str) else str(value))))
            for name, value in message._headers]  # type: ignore[attr-defined]


def decoded(value: str | None) -> str:
    """A raw header value as a mail client shows it: unfolded, encoded words decoded."""
    if not value:
        return ""
    unfolded = re.sub(r"(?:\r\n|\r|\n)[ \t]+", " ", readable(value)).strip()
    try:
        return readable(str(email.header.make_header(email.header.decode_header(unfolded))))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        return unfolded


def first(message: email.message.Message, name: str) -> str | None:
    """The first such header as written (unfolded), whatever bytes it holds."""
    name = name.lower()
    return next((value for key, value in raw_headers(message) if key.lower() == name), None)
