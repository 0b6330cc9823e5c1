"""The message's own headers, decoded only when asked for: subject, addresses, date, ids."""

from __future__ import annotations

import datetime
import re
from email.message import Message
from email.utils import parsedate_to_datetime

from .text import ID_JUNK, clean_text, decode_words, fix_surrogates, has_8bit, is_utf8, message_ids, title
from .values import Address, Notes

_UTC = datetime.UTC
_ZONE_MINUS_ZERO = re.compile(r"-0000\b")
# One lexical token of an address list (RFC 5322 section 3.4, leniently): a quoted string, a
# comment (one level of nesting), an angle address, an encoded word (kept whole, so a ":" or ","
# inside one is never taken for syntax), a separator, or a run of anything else.
_ADDRESS_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"?'
    r"|\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)?"
    r"|<[^<>]*>?"
    r"|=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="
    r"|[,;:]"
    r"|\s+"
    r'|[^",;:()<\s=]+|[=)>]',
    re.DOTALL,
)


_BRACKETED = re.compile(r"<([^<>\s]*@[^<>\s]*)>")


class Headers:
    """The top-level headers, as raw text; each is decoded leniently when first asked for."""

    def __init__(self, message: Message, notes: Notes) -> None:
        self._notes = notes
        self._values: dict[str, list[str]] = {}
        for name, value in message._headers:  # type: ignore[attr-defined]  # the raw (name, value) pairs
            self._values.setdefault(name.lower(), []).append(re.sub(r"[\r\n]", "", str(value)))

    def raw(self, name: str) -> str | None:
        """The first such header as it came (unfolded), with raw 8-bit bytes read as text."""
        values = self._values.get(name)
        return self._decoded(name, values[0], words=False) if values else None

    def text(self, name: str) -> str:
        values = self._values.get(name)
        if not values:
            return ""
        return clean_text(self._decoded(name, values[0]))

    def addresses(self, name: str) -> tuple[Address, ...]:
        values = self._values.get(name)
        if not values:
            return ()
        # Several To: lines are malformed but happen; nobody on any of them should be missed.
        addresses: list[Address] = []
        unreadable = without_domain = 0
        for value in values:
            for entry in _address_list(value):
                if entry is None:
                    unreadable += 1
                    continue
                display_name, written = entry
                display_name = clean_text(self._decoded(name, display_name))
                email = ID_JUNK.sub("", self._decoded(name, written, words=False)).lower()
                if "@" not in email:
                    without_domain += 1
                addresses.append(Address(name=display_name, email=email))
        if without_domain:
            plural = "entries" if without_domain > 1 else "entry"
            self._notes.add(f"{without_domain} {plural} in the {title(name)} header "
                            f"{'have' if without_domain > 1 else 'has'} no email domain; shown as written.")
        if unreadable:
            plural = "addresses" if unreadable > 1 else "address"
            self._notes.add(f"{unreadable} {plural} in the {title(name)} header could not be read.")
        return tuple(addresses)

    def _decoded(self, name: str, value: str, *, words: bool = True) -> str:
        if has_8bit(value) and not is_utf8(_outside_words(value) if words else value):
            self._notes.add(f"The {title(name)} header has unencoded non-ASCII text; it was read as Windows-1252.")
        if not words:
            return fix_surrogates(value)

        def unknown(charset: str) -> None:
            self._notes.add(f"The {title(name)} header names an unknown character set; it was guessed.")

        return decode_words(value, unknown)


def _outside_words(value: str) -> str:
    return re.sub(r"=\?[^?\s]+\?[bBqQ]\?[^?\r\n]*?\?=", "", value) if "=?" in value else value


def _address_list(value: str) -> list[tuple[str, str] | None]:
    """The entries of an address header as (display name, address as written), still encoded.

    None stands for an entry with nothing in it a person could use ("<>"). Groups give their
    members; an empty group ("undisclosed-recipients:;") is kept as written, since it is what the
    sender chose to show.
    """
    entries: list[tuple[str, str] | None] = []
    item: list[str] = []
    group: str | None = None
    group_members = 0

    def flush() -> None:
        nonlocal group_members
        if any(token.strip() for token in item):
            entries.append(_entry(item))
            group_members += 1
        item.clear()

    for token in _ADDRESS_TOKEN.findall(value):
        if token == ",":
            flush()
        elif token == ":" and group is None and not any(part[:1] == "<" or "@" in part for part in item):
            group, group_members = _joined(item), 0
            item.clear()
        elif token == ";":
            flush()
            if group is not None:
                if not group_members:
                    entries.append((f"{group}:;", ""))
                group = None
        else:
            item.append(token)
    flush()
    if group is not None and not group_members:
        entries.append((f"{group}:", ""))
    return entries


def _entry(tokens: list[str]) -> tuple[str, str] | None:
    """One entry: (display name, address), None when nothing in it can be shown."""
    angle = next((index for index, token in enumerate(tokens) if token[:1] == "<"), None)
    comments = [token[1:-1] if token.endswith(")") else token[1:] for token in tokens if token[:1] == "("]
    if angle is not None:
        address = tokens[angle].strip("<>")
        address = address.rpartition(":")[2] if address.startswith("@") else address  # an obsolete route
        display = _joined(tokens[:angle]) or " ".join(comments)
        if not address.strip() and not display:
            return None
        return display, address.strip()
    written = _joined(tokens)
    # An unclosed quote swallows the angle address: '"Smith, Ann <ann@example.com>'.
    if (bracketed := _BRACKETED.search(written)) is not None:
        return written[: bracketed.start()].strip(), bracketed.group(1).strip()
    if "@" in written:
        # "a@example.com (Ann)": the comment is the only name there is.
        return " ".join(comments), "".join(written.split())
    return written, ""


def _joined(tokens: list[str]) -> str:
    """The tokens as written, without comments, quoted strings unquoted."""
    pieces = []
    for token in tokens:
        if token[:1] == "(":
            continue
        if token[:1] == '"':
            token = re.sub(r"\\(.)", r"\1", token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:])
        pieces.append(token)
    return " ".join("".join(pieces).split())


def parse_date(value: str | None, notes: Notes) -> datetime.datetime | None:
    if value is None or not value.strip():
        notes.add("The message has no Date header.")
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            date = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            notes.add(f"The Date header could not be read ({clean_text(value)[:80]}).")
            return None
    if date.tzinfo is None:
        # RFC 5322 writes "-0000" for a time in UTC with no local zone; anything else lacked a zone.
        if not _ZONE_MINUS_ZERO.search(value):
            notes.add("The Date header has no time zone; UTC was assumed.")
        date = date.replace(tzinfo=_UTC)
    return date


def ids(value: str | None) -> list[str]:
    return message_ids(value or "")

