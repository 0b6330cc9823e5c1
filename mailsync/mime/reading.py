"""Reading the input: feeding it to the parser in chunks, and repairing a damaged header block."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from email import policy as email_policy
from email.feedparser import BytesFeedParser
from typing import BinaryIO, cast

from .spool import Spool, SpoolingMessage
from .text import clean_text, fix_surrogates
from .values import Notes, UnparseableMessage

_FEED_CHUNK = 64 * 1024
# Header blocks are small; past this we stop looking for broken header lines and let the parser cope.
_MAX_HEADER_BLOCK = 1024 * 1024
# The empty line that ends the header block, whichever line ends the message uses (CR alone too:
# old Macintosh clients).
_HEADER_END = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r(?!\n))")
# The same test the feed parser applies to a header line; a line failing it ends the header block.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_HEADER_NAME_SPACE_COLON = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[\t ]+:")
_HEADER_NAME_8BIT = re.compile(rb"([\x21-\x39\x3b-\xff]+):")
# Headers every message has one of: a block that starts with junk is a header block if one follows.
_COMMON_FIELD = re.compile(
    rb"(?i)(?:from|to|cc|subject|date|message-id|received|return-path|mime-version|content-type|sender|"
    rb"reply-to|delivered-to|x-[\x21-\x39\x3b-\x7e]*):"
)
# Folded address lines that lost their leading space still look like addresses.
_ADDRESS_FIELDS = re.compile(rb"(?i)(?:from|to|cc|bcc|reply-to|sender|references|in-reply-to):")
_ADDRESS_LIKE = re.compile(rb"@|<|=\?")
_MAX_LEADING_JUNK = 5


def input_chunks(raw: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(raw, bytes | bytearray | memoryview):
        view = memoryview(raw)
        for start in range(0, len(view), _FEED_CHUNK):
            yield bytes(view[start : start + _FEED_CHUNK])
        return
    while chunk := raw.read(_FEED_CHUNK):
        if not isinstance(chunk, bytes):
            raise TypeError("parse_message needs bytes; open the file in binary mode")
        yield chunk


def new_parser(spool: Spool) -> BytesFeedParser:
    return BytesFeedParser(_factory=spool.message_factory, policy=email_policy.compat32)


def parse_tree(chunks: Iterable[bytes], spool: Spool, notes: Notes) -> tuple[SpoolingMessage, int]:
    """Feed the input to the parser in chunks (never as one decoded copy of the whole message)."""
    parser = new_parser(spool)
    size = 0
    has_content = False
    head = b""
    in_head = True
    for chunk in chunks:
        size += len(chunk)
        has_content = has_content or bool(chunk.strip())
        if not in_head:
            parser.feed(chunk)
            continue
        head += chunk
        header_end = _HEADER_END.search(head, _leading_blank_lines(head))
        if header_end is None and len(head) < _MAX_HEADER_BLOCK:
            continue
        in_head = False
        if header_end is None:
            parser.feed(head)
        else:
            parser.feed(repair_header_block(head[: header_end.start()], notes) + head[header_end.start() :])
        head = b""
    if in_head and head:
        # The whole message is one header block (or headers running straight into the body).
        parser.feed(repair_header_block(head, notes))
    if not has_content:
        raise UnparseableMessage("The message is empty.")
    # Every part, the root included, comes from the spool's factory.
    return cast(SpoolingMessage, parser.close()), size


def _leading_blank_lines(head: bytes) -> int:
    """Where the header block starts when the message opens with empty lines before its headers."""
    stripped = head.lstrip(b"\r\n")
    return len(head) - len(stripped) if _COMMON_FIELD.match(stripped) else 0


def repair_header_block(block: bytes, notes: Notes) -> bytes:
    """Keep damaged lines from ending the header block early and pushing From/To into the body.

    - Empty lines or a line of junk before the first header (a byte-order mark, an escaped mbox
      separator) are left out, when real headers follow.
    - A line the parser would not accept as a header is usually a folded line that lost its leading
      space, so it is joined to the header before it; but lines after the last header that are not
      headers are the body, which started without the empty line that should come first.
    - A header name with a space before its colon, or with 8-bit bytes in it, is read anyway.
    """
    lines = block.splitlines(keepends=True)
    start = _first_header_line(lines)
    if start is None:
        # Not a header block at all: the parser reads it as a body, which is the best we can do.
        return block
    if start:
        skipped = b"".join(lines[:start])
        if skipped.strip():
            text = clean_text(fix_surrogates(skipped.decode("ascii", "surrogateescape")).lstrip("\ufeff"))
            notes.add(f"The message began with text that is not a header ({text[:80]}); it was left out.")
        else:
            notes.add("The message began with an empty line; the headers after it were read.")
        lines = lines[start:]
    last_field = max((index for index, line in enumerate(lines) if _is_field(line)), default=len(lines))
    repaired: list[bytes] = []
    current_field = b""
    for index, line in enumerate(lines):
        if _HEADER_LINE.match(line):
            repaired.append(line)
            if not line[:1].isspace():
                current_field = line
            continue
        if index > last_field and not (_ADDRESS_FIELDS.match(current_field) and _ADDRESS_LIKE.search(line)):
            preview = clean_text(fix_surrogates(line.decode("ascii", "surrogateescape")))
            notes.add(f"The headers did not end with an empty line; the text from “{preview[:60]}” on was read "
                      "as the body.")
            line_end = re.search(rb"\r\n|\n|\r", lines[index - 1]) if index else None
            return b"".join(repaired) + (line_end.group(0) if line_end else b"\r\n") + b"".join(lines[index:])
        if spaced := _HEADER_NAME_SPACE_COLON.match(line):
            repaired.append(spaced.group(1) + b":" + line[spaced.end() :])
            notes.add("A header name was followed by a space before its colon; it was read anyway.")
        elif eight_bit := _HEADER_NAME_8BIT.match(line):
            name = re.sub(rb"[\x80-\xff]", b"?", eight_bit.group(1))
            repaired.append(name + b":" + line[eight_bit.end() :])
            notes.add("A header name had characters a header name cannot have; it was read anyway.")
        else:
            repaired.append(b" " + line)
            notes.add("A header line without a name was read as the continuation of the header before it.")
    return b"".join(repaired)


def _is_field(line: bytes) -> bool:
    return bool(_FIELD_LINE.match(line) or line.startswith(b"From ") or _HEADER_NAME_SPACE_COLON.match(line)
                or _HEADER_NAME_8BIT.match(line))


def _first_header_line(lines: list[bytes]) -> int | None:
    if lines and _HEADER_LINE.match(lines[0]):
        return 0
    for index, line in enumerate(lines[: _MAX_LEADING_JUNK + 1]):
        if _COMMON_FIELD.match(line):
            return index
    return None
