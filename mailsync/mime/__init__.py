"""Turn one raw RFC 5322 message into plain values for the capture pipeline.

`parse_message` never trusts its input: mail arrives from every kind of client and gateway, so
anything malformed degrades to the best reading we can make, with a note in `problems` that the
user can see. Only input with nothing readable at all raises `UnparseableMessage`.

Attachments are decoded straight into files in the caller's spool directory while the message is
being parsed, so a large attachment is held in memory once, briefly, rather than as several copies.

The modules follow the work: `reading` (the input and its header block), `spool` (payloads to
disk), `parts` (a part's own headers), `headers` (the message's headers), `text` (charsets and
encoded words), `tree` (walking the parts), `digest` (recognising one email without a Message-ID).
HTML becomes text through `providers.html_text`, as an appointment's notes do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from .reading import input_chunks, parse_tree
from .spool import Spool
from .tree import interpret
from .values import (
    Address,
    Notes,
    ParsedAttachment,
    ParsedEmail,
    UnparseableMessage,
    dedupe_key_for_message_id,
    reply_keys,
)

__all__ = [
    "MAX_NESTING",
    "Address",
    "ParsedAttachment",
    "ParsedEmail",
    "UnparseableMessage",
    "dedupe_key_for_message_id",
    "parse_message",
    "reply_keys",
]

# Real mail nests a handful of levels (a forwarded message in a signed one, say); far more is an attack.
MAX_NESTING = 64


def parse_message(
    raw: bytes | BinaryIO, *, spool_dir: Path, max_attachment_bytes: int = 35 * 1024 * 1024
) -> ParsedEmail:
    """Parse a raw message; attachments are written to new files in `spool_dir`.

    The caller owns those files from then on (moves or deletes them). If parsing fails, the files
    written so far are removed. An attachment larger than `max_attachment_bytes` is left out, with a note.
    """
    notes = Notes()
    spool = Spool(Path(spool_dir), max_attachment_bytes, notes)
    try:
        try:
            root, size = parse_tree(input_chunks(raw), spool, notes)
            if _nesting_depth(root) > MAX_NESTING:
                raise RecursionError("nesting")
            return interpret(root, size, spool, notes)
        except RecursionError as error:
            # Both the parser and the walk recurse once per nesting level; a thousand levels is an attack.
            raise UnparseableMessage("The message has too many nested parts to be read.") from error
    except BaseException:
        spool.discard_all()
        raise


def _nesting_depth(root: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart() and depth <= MAX_NESTING:
            stack.extend((child, depth + 1) for child in part.get_payload())
    return deepest
