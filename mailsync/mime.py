"""Turn one raw RFC 5322 message into plain values for the capture pipeline.

`parse_message` never trusts its input: mail arrives from every kind of client and gateway, so
anything malformed degrades to the best reading we can make, with a note in `problems` that the
user can see. Only input with nothing readable at all raises `UnparseableMessage`.

Attachments are decoded straight into files in the caller's spool directory while the message is
being parsed, so a large attachment is held in memory once, briefly, rather than as several copies.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime
import functools
import hashlib
import json
import mimetypes
import os
import quopri
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import errors as email_errors
from email import policy as email_policy
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.header import decode_header
from email.message import EmailMessage
from email.policy import Policy
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import Any, BinaryIO, cast

_FEED_CHUNK = 64 * 1024
_DECODE_BLOCK = 1024 * 1024
# Header blocks are small; past this we stop looking for broken header lines and let the parser cope.
_MAX_HEADER_BLOCK = 1024 * 1024
_FILENAME_MAX = 200
_DEDUPE_TEXT_CHARS = 10 * 1024

_UTC = datetime.UTC
_POLICY = email_policy.default
# Attached messages are written back out byte for byte as far as possible: headers as they came,
# 8-bit bodies left alone, CRLF line ends as RFC 5322 stores them.
_EML_POLICY = email_policy.default.clone(linesep="\r\n", refold_source="none", cte_type="8bit", max_line_length=0)

_BODY_TYPES = ("text/plain", "text/html")
_KNOWN_TRANSFER_ENCODINGS = {
    "", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue",
}
# Misspellings seen in the wild ("base-64", "Quoted Printable", "x-base64"), by their letters and digits.
_TRANSFER_ENCODING_SPELLINGS = {"base64": "base64", "quotedprintable": "quoted-printable", "7bit": "7bit",
                                "8bit": "8bit"}
_SMIME_CONTENT_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_EXTENSIONS = {
    "application/ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "application/pdf": ".pdf",
    "application/pkcs7-mime": ".p7m",
    "application/pkcs7-signature": ".p7s",
    "application/vnd.ms-tnef": ".dat",
    "application/x-pkcs7-mime": ".p7m",
    "application/x-pkcs7-signature": ".p7s",
    "application/zip": ".zip",
    "image/gif": ".gif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "message/delivery-status": ".txt",
    "message/global": ".eml",
    "message/rfc822": ".eml",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/html": ".html",
    "text/plain": ".txt",
}
# Labels seen in real mail that Python does not know, or knows as a narrower charset than the
# sender actually used (mail labelled GB2312 routinely contains GBK characters).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "macintosh": "mac_roman",
    "tis-620": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "x-gbk": "gb18030",
    "x-mac-roman": "mac_roman",
}
_PARSER_DEFECT_NOTES: dict[type[email_errors.MessageDefect], str] = {
    email_errors.CloseBoundaryNotFoundDefect: "The message ends before its last part is closed; it may be cut short.",
    email_errors.FirstHeaderLineIsContinuationDefect: "The first header line of a part is malformed.",
    email_errors.MisplacedEnvelopeHeaderDefect: "A stray mailbox separator line was found among the headers.",
    email_errors.MissingHeaderBodySeparatorDefect: (
        "A header line could not be read; the text from there on was treated as the body."
    ),
    email_errors.MultipartInvariantViolationDefect: "A part claims to have sub-parts but has none.",
    email_errors.InvalidMultipartContentTransferEncodingDefect: (
        "A multipart section declares a transfer encoding, which was ignored."
    ),
}
# Handled where they happen, with a better note.
_DEFECTS_NOTED_ELSEWHERE = (email_errors.NoBoundaryInMultipartDefect, email_errors.StartBoundaryNotFoundDefect)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# The same test the feed parser applies to a header line; a line failing it ends the header block.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_HEADER_NAME_SPACE_COLON = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[\t ]+:")
_BOUNDARY_LINE = re.compile(r"^--([^\r\n]{1,200}?)[ \t]*\r?$", re.MULTILINE)
_FINAL_LINE_END = re.compile(r"(?:\r\n|\r|\n)\Z")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_CHARSET_NAME = re.compile(r"[a-z0-9._:+-]{1,40}")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")
_SURROGATE_RUN = re.compile(r"[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 and C1 controls and Unicode line/paragraph separators: none belongs in a one-line value, and
# CR/LF smuggled in through encoded words would otherwise let a value pose as extra headers.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidirectional overrides let "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_ID_JUNK = re.compile(r"[\s\x00-\x1f\x7f]+")
_CID_REFERENCE = re.compile(r"cid:([^\"'\s>)]+)", re.IGNORECASE)
_ZONE_MINUS_ZERO = re.compile(r"-0000\b")


class UnparseableMessage(ValueError):
    """Nothing useful could be read from the input at all."""


@dataclass(frozen=True)
class Address:
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

    def participants(self) -> set[str]:
        senders = (self.from_,) if self.from_ else ()
        everyone = (*senders, *self.to, *self.cc, *self.bcc, *self.reply_to)
        return {address.email.lower() for address in everyone}

    def dedupe_key(self) -> str:
        """The same email captured from two mailboxes gives the same key.

        Without a Message-ID, the key hashes what every copy of one email shares: the sender, the
        instant it was sent (in UTC, so a different zone notation does not matter), the subject and
        the start of the text with whitespace normalised (mail systems re-wrap and change line ends).
        """
        if self.message_id:
            return dedupe_key_for_message_id(self.message_id)
        text = unicodedata.normalize("NFC", " ".join(self.text_body.split()))[:_DEDUPE_TEXT_CHARS]
        fields = [
            self.from_.email if self.from_ else "",
            self.date.astimezone(_UTC).isoformat() if self.date else "",
            " ".join(self.subject.split()),
            text,
        ]
        return "hash:" + hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def dedupe_key_for_message_id(message_id: str) -> str:
    """The `dedupe_key` of any email with this Message-ID, written with or without its angle brackets.

    Mail sent from Aspire is recorded under the same key, so capturing it later finds that record.
    """
    ids = _message_ids(message_id)
    return "mid:" + ids[0].lower() if ids else ""


def parse_message(
    raw: bytes | BinaryIO, *, spool_dir: Path, max_attachment_bytes: int = 35 * 1024 * 1024
) -> ParsedEmail:
    """Parse a raw message; attachments are written to new files in `spool_dir`.

    The caller owns those files from then on (moves or deletes them). If parsing fails, the files
    written so far are removed. An attachment larger than `max_attachment_bytes` is left out, with a note.
    """
    notes = _Notes()
    spool = _Spool(Path(spool_dir), max_attachment_bytes, notes)
    try:
        try:
            root, size = _parse_tree(_input_chunks(raw), spool, notes)
            if _nesting_depth(root) > MAX_NESTING:
                raise RecursionError("nesting")
            return _interpret(root, size, spool, notes)
        except RecursionError as error:
            # Both the parser and the walk recurse once per nesting level; a thousand levels is an attack.
            raise UnparseableMessage("The message has too many nested parts to be read.") from error
    except BaseException:
        spool.discard_all()
        raise


# Real mail nests a handful of levels (a forwarded message in a signed one, say); far more is an attack.
MAX_NESTING = 64


def _nesting_depth(root: EmailMessage) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart() and depth <= MAX_NESTING:
            stack.extend((child, depth + 1) for child in part.get_payload())
    return deepest


class _Notes:
    """The `problems` list: in order of discovery, each said once."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, note: str) -> None:
        self._items.setdefault(note, None)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._items)


# --- Reading the input -------------------------------------------------------------------------


def _input_chunks(raw: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(raw, bytes | bytearray | memoryview):
        view = memoryview(raw)
        for start in range(0, len(view), _FEED_CHUNK):
            yield bytes(view[start : start + _FEED_CHUNK])
        return
    while chunk := raw.read(_FEED_CHUNK):
        if not isinstance(chunk, bytes):
            raise TypeError("parse_message needs bytes; open the file in binary mode")
        yield chunk


def _parse_tree(chunks: Iterable[bytes], spool: _Spool, notes: _Notes) -> tuple[_SpoolingMessage, int]:
    """Feed the input to the parser in chunks (never as one decoded copy of the whole message)."""
    parser = BytesFeedParser(_factory=spool.message_factory, policy=_POLICY)
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
        header_end = _HEADER_END.search(head)
        if header_end is None and len(head) < _MAX_HEADER_BLOCK:
            continue
        in_head = False
        if header_end is None:
            parser.feed(head)
        else:
            parser.feed(_repair_header_block(head[: header_end.start()], notes) + head[header_end.start() :])
        head = b""
    if in_head and head:
        # The whole message is one header block (no body).
        parser.feed(_repair_header_block(head, notes))
    if not has_content:
        raise UnparseableMessage("The message is empty.")
    # Every part, the root included, comes from the spool's factory.
    return cast(_SpoolingMessage, parser.close()), size


def _repair_header_block(block: bytes, notes: _Notes) -> bytes:
    """Keep one bad line from ending the header block early and pushing From/To into the body.

    A line the parser would not accept as a header is usually a folded line that lost its leading
    space, so it is joined to the header before it.
    """
    lines = block.splitlines(keepends=True)
    if not lines or not _HEADER_LINE.match(lines[0]):
        # Not a header block at all: the parser reads it as a body, which is the best we can do.
        return block
    repaired = []
    for line in lines:
        if _HEADER_LINE.match(line):
            repaired.append(line)
        elif spaced := _HEADER_NAME_SPACE_COLON.match(line):
            repaired.append(spaced.group(1) + b":" + line[spaced.end() :])
            notes.add("A header name was followed by a space before its colon; it was read anyway.")
        else:
            repaired.append(b" " + line)
            notes.add("A header line without a name was read as the continuation of the header before it.")
    return b"".join(repaired)


# --- Spooling payloads to disk as the parser produces them -------------------------------------


@dataclass(frozen=True)
class _Stored:
    path: Path
    size: int
    sha256: str


class _TooLarge(Exception):
    pass


class _Sink:
    """A spool file that counts and hashes what is written, and refuses to grow past a limit."""

    def __init__(self, file: BinaryIO, limit: int) -> None:
        self._file = file
        self._limit = limit
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self._limit:
            raise _TooLarge
        self._digest.update(data)
        self._file.write(data)
        return len(data)

    def sha256(self) -> str:
        return self._digest.hexdigest()


class _Spool:
    def __init__(self, directory: Path, limit: int, notes: _Notes) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._limit = limit
        self._notes = notes
        self._paths: list[Path] = []
        self.message_factory = functools.partial(_SpoolingMessage, spool=self)

    def store(self, part: _SpoolingMessage, payload: str | None = None) -> _Stored | None:
        """Write the part's decoded content to a new spool file; None when it is over the limit.

        `payload` is the part's payload when the caller already holds it: reading it back through
        `get_payload()` would make a full transient copy (it checks the text for undecodable bytes).
        """
        descriptor, name = tempfile.mkstemp(dir=self._directory, prefix="mime-", suffix=".part")
        path = Path(name)
        self._paths.append(path)
        too_large = False
        with os.fdopen(descriptor, "wb") as file:
            sink = _Sink(file, self._limit)
            try:
                _write_part(part, sink, self._notes, payload)
            except _TooLarge:
                too_large = True
        if too_large:
            self._paths.remove(path)
            path.unlink()
            limit_mb = self._limit / (1024 * 1024)
            self._notes.add(f"{_sentence(_describe(part))} is larger than {limit_mb:g} MB and was not kept.")
            return None
        return _Stored(path, sink.size, sink.sha256())

    def discard_all(self) -> None:
        for path in self._paths:
            path.unlink(missing_ok=True)
        self._paths.clear()


class _SpoolingMessage(EmailMessage):
    """A parsed part that moves an attachment's payload to disk as soon as the parser hands it over.

    The feed parser builds each leaf's payload as one string and passes it to `set_payload`; taking
    it there means a large attachment is decoded to disk and released before the next part is
    read, instead of every encoded payload staying in memory until the whole message is parsed.
    """

    def __init__(self, policy: Policy | None = None, *, spool: _Spool | None = None) -> None:
        super().__init__(policy)
        self._spool = spool
        self._container: _SpoolingMessage | None = None
        self.spooled = False
        self.stored: _Stored | None = None

    def get(self, name: str, failobj: Any = None) -> Any:
        # The strict header parser raises on some malformed values, and the feed parser itself
        # asks for Content-Type that way; the raw text still answers what it needs to know.
        try:
            return super().get(name, failobj)
        except Exception:
            value = _raw_header(self, name.lower())
            return failobj if value is None else value

    # Parameter decoding (RFC 2231) raises on some malformed values too; a parameter that cannot be
    # read is treated as absent, and a multipart without its boundary is recovered later.
    def get_param(self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True) -> Any:
        try:
            return super().get_param(param, failobj, header, unquote)
        except Exception:
            return failobj

    def get_content_type(self) -> str:
        # The parser and we ask a part for its type dozens of times, and the modern policy parses
        # the header afresh on every call: remember the answer for the header text it came from.
        headers = self._headers  # type: ignore[attr-defined]  # the raw (name, value) pairs
        key = (next((str(v) for k, v in headers if k.lower() == "content-type"), None), self.get_default_type())
        cached = self.__dict__.get("_type_cache")
        if cached is not None and cached[0] == key:
            return str(cached[1])
        value = super().get_content_type()
        self.__dict__["_type_cache"] = (key, value)
        return value

    def get_boundary(self, failobj: Any = None) -> Any:
        try:
            return super().get_boundary(failobj)
        except Exception:
            return failobj

    def get_content_charset(self, failobj: Any = None) -> Any:
        try:
            return super().get_content_charset(failobj)
        except Exception:
            return failobj

    def attach(self, payload: Any) -> None:
        super().attach(payload)
        if isinstance(payload, _SpoolingMessage):
            payload._container = self

    def set_payload(self, payload: Any, charset: Any = None) -> None:
        if self._spool is not None and isinstance(payload, str) and self._spools_early():
            inside_multipart = self._container is not None and self._container.get_content_maintype() == "multipart"
            # The line end before a boundary belongs to the boundary (RFC 2046); the parser only trims
            # it after this call, too late for what we write to disk. Base64 ignores line ends, and
            # not copying a large base64 payload just to trim it matters for memory.
            if inside_multipart and _transfer_encoding(self) != "base64":
                payload = _FINAL_LINE_END.sub("", payload)
            super().set_payload(payload, charset)
            self.stored = self._spool.store(self, payload)
            self.spooled = True
            payload = ""
        super().set_payload(payload, charset)

    def _spools_early(self) -> bool:
        if self.get_content_maintype() in ("multipart", "message") or _body_kind(self):
            return False
        # Parts of an attached message stay in memory: the whole message is saved as one .eml later.
        container = self._container
        while container is not None:
            if container.get_content_maintype() == "message":
                return False
            container = container._container
        return True


def _write_part(part: _SpoolingMessage, sink: _Sink, notes: _Notes, payload: str | None) -> None:
    if part.get_content_maintype() == "message" and part.is_multipart():
        generator = BytesGenerator(sink, mangle_from_=False, policy=_EML_POLICY)
        for position, inner in enumerate(part.get_payload()):
            if position:
                sink.write(b"\r\n")
            try:
                generator.flatten(inner, unixfrom=False)
            except _TooLarge:
                raise
            except Exception:  # re-serialising a damaged message can fail in many ways
                notes.add(f"{_sentence(_describe(part))} could not be saved completely.")
        return
    for chunk in _decoded_chunks(part, _describe(part), notes, payload):
        sink.write(chunk)


def _decoded_chunks(part: EmailMessage, label: str, notes: _Notes, payload: str | None = None) -> Iterator[bytes]:
    """The part's content with its transfer encoding undone, in pieces for base64 (the large case)."""
    declared = _declared_transfer_encoding(part)
    encoding = _transfer_encoding(part)
    if encoding != declared:
        notes.add(f"{_sentence(label)} declares the transfer encoding '{declared}'; it was read as {encoding}.")
    elif encoding not in _KNOWN_TRANSFER_ENCODINGS:
        notes.add(f"{_sentence(label)} declares an unknown transfer encoding ({encoding}); it was kept as it is.")
    if encoding == "base64":
        yield from _base64_chunks(part.get_payload() if payload is None else payload, label, notes)
        return
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a damaged encoding must not cost the rest of the message
        notes.add(f"{_sentence(label)} could not be decoded and was left out.")
        return
    if isinstance(data, bytes):
        # get_payload only knows the standard spelling: misspelt quoted-printable comes back encoded.
        yield quopri.decodestring(data) if encoding == "quoted-printable" != declared else data


def _base64_chunks(payload: Any, label: str, notes: _Notes) -> Iterator[bytes]:
    if not isinstance(payload, str):
        return
    damaged = False

    def decode(letters: str) -> bytes:
        nonlocal damaged
        try:
            return binascii.a2b_base64(letters)
        except binascii.Error:
            damaged = True
            letters = letters.replace("=", "")
            letters = letters[: len(letters) - (1 if len(letters) % 4 == 1 else 0)]
            return binascii.a2b_base64(letters + "=" * (-len(letters) % 4))

    carry = ""
    for start in range(0, len(payload), _DECODE_BLOCK):
        letters, removed = _NOT_BASE64.subn("", "".join(payload[start : start + _DECODE_BLOCK].split()))
        damaged = damaged or removed > 0
        letters = carry + letters
        usable = len(letters) - len(letters) % 4
        carry = letters[usable:]
        if usable:
            yield decode(letters[:usable])
    if carry:
        # A truncated last group: keep the whole bytes it still holds.
        damaged = True
        if len(carry) > 1:
            yield decode(carry + "=" * (-len(carry) % 4))
    if damaged:
        notes.add(f"{_sentence(label)} was damaged in transit (invalid base64); what could be read was kept.")


# --- Walking the tree --------------------------------------------------------------------------


@dataclass
class _Leaf:
    part: _SpoolingMessage
    kind: str  # "text/plain" or "text/html" for a body candidate, "" for an attachment
    in_alternative: bool


def _interpret(root: _SpoolingMessage, size: int, spool: _Spool, notes: _Notes) -> ParsedEmail:
    headers = _Headers(root, notes)
    subject = headers.text("subject")
    senders = headers.addresses("from")
    to, cc, bcc = headers.addresses("to"), headers.addresses("cc"), headers.addresses("bcc")
    reply_to = headers.addresses("reply-to")
    date = _parse_date(headers.raw("date"), notes)
    message_ids = _message_ids(headers.raw("message-id") or "")
    if not message_ids:
        notes.add(
            "The message has no Message-ID; copies of it are recognised by sender, date, subject and text instead."
        )
    in_reply_to = _message_ids(headers.raw("in-reply-to") or "")
    references = tuple(dict.fromkeys(_message_ids(headers.raw("references") or "")))
    if not senders:
        notes.add("The message has no readable sender (From).")

    leaves: list[_Leaf] = []
    _collect(root, False, leaves, spool, notes)
    text_leaf = _pick_body(leaves, "text/plain")
    html_leaf = _pick_body(leaves, "text/html")
    text_body = _body_text(text_leaf.part, "the text body", notes) if text_leaf else ""
    html_body = _body_text(html_leaf.part, "the HTML body", notes) if html_leaf else ""
    if not text_body.strip() and html_body:
        text_body = _html_to_text(html_body)

    referenced_ids = {_url_unquote(found).lower() for found in _CID_REFERENCE.findall(html_body)}
    attachments: list[ParsedAttachment] = []
    for leaf in leaves:
        if leaf is text_leaf or leaf is html_leaf:
            continue
        attachment = _attachment(leaf.part, len(attachments) + 1, referenced_ids, spool, notes)
        if attachment is not None:
            attachments.append(attachment)

    if not (senders or to or cc or bcc or subject or message_ids or date or text_body.strip() or attachments):
        raise UnparseableMessage("Nothing readable was found in the message.")
    return ParsedEmail(
        subject=subject,
        from_=senders[0] if senders else None,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        date=date,
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        text_body=text_body,
        html_body=html_body,
        attachments=tuple(attachments),
        problems=notes.as_tuple(),
        size=size,
    )


def _collect(part: _SpoolingMessage, in_alternative: bool, leaves: list[_Leaf], spool: _Spool, notes: _Notes) -> None:
    """List the leaves in document order; an attached message is one leaf (it becomes an .eml)."""
    for defect in part.defects:
        if not isinstance(defect, _DEFECTS_NOTED_ELSEWHERE):
            notes.add(_PARSER_DEFECT_NOTES.get(type(defect), "Part of the message is malformed; it was read anyway."))
    content_type = part.get_content_type()
    if part.get_content_maintype() == "multipart":
        if not part.is_multipart():
            recovered = _recover_multipart(part, spool, notes)
            if recovered is None:
                leaves.append(_Leaf(part, "text/plain", in_alternative))
                return
            part = recovered
        inside_alternative = in_alternative or content_type == "multipart/alternative"
        for child in part.get_payload():
            if isinstance(child, _SpoolingMessage):
                _collect(child, inside_alternative, leaves, spool, notes)
        return
    if content_type in _SMIME_CONTENT_TYPES:
        notes.add("Part of the message is protected with S/MIME; it is kept as an attachment but could not be read.")
    leaves.append(_Leaf(part, _body_kind(part), in_alternative))


def _recover_multipart(part: _SpoolingMessage, spool: _Spool, notes: _Notes) -> _SpoolingMessage | None:
    """A multipart section whose boundary is missing or wrong: find the boundary the parts really use."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a damaged encoding must not cost the rest of the message
        data = None
    if not isinstance(data, bytes):
        data = b""
    found = _BOUNDARY_LINE.search(data.decode("ascii", "surrogateescape"))
    if found is None:
        notes.add("A section of the message says it has several parts but they could not be told apart; "
                  "it was read as plain text.")
        return None
    boundary = found.group(1).replace('"', "")
    header = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\r\n\r\n'
    parser = BytesFeedParser(_factory=spool.message_factory, policy=_POLICY)
    parser.feed(header.encode("utf-8", "surrogateescape"))
    parser.feed(data)
    recovered = parser.close()
    if not isinstance(recovered, _SpoolingMessage) or not recovered.is_multipart():
        notes.add("A section of the message says it has several parts but they could not be told apart; "
                  "it was read as plain text.")
        return None
    notes.add("A section of the message did not say where its parts begin; they were found by their separator lines.")
    return recovered


def _body_kind(part: EmailMessage) -> str:
    content_type = part.get_content_type()
    if content_type in _BODY_TYPES and _disposition(part) != "attachment":
        return content_type
    return ""


def _pick_body(leaves: list[_Leaf], kind: str) -> _Leaf | None:
    candidates = [leaf for leaf in leaves if leaf.kind == kind]
    for leaf in candidates:
        if leaf.in_alternative:
            return leaf
    return candidates[0] if candidates else None


def _body_text(part: EmailMessage, label: str, notes: _Notes) -> str:
    data = b"".join(_decoded_chunks(part, label, notes))
    text = _decode_text(data, part.get_content_charset(), label, notes)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # PostgreSQL text columns refuse NUL characters.
    return text.replace("\x00", "")


def _attachment(
    part: _SpoolingMessage, index: int, referenced_ids: set[str], spool: _Spool, notes: _Notes
) -> ParsedAttachment | None:
    stored = part.stored if part.spooled else spool.store(part)
    if stored is None:
        return None
    content_type = part.get_content_type()
    content_id = _content_id(part)
    return ParsedAttachment(
        filename=_attachment_filename(part, content_type, index),
        content_type=content_type,
        size=stored.size,
        content_id=content_id,
        inline=bool(content_id) and _disposition(part) != "attachment" and content_id.lower() in referenced_ids,
        path=stored.path,
        sha256=stored.sha256,
    )


# --- Part headers ------------------------------------------------------------------------------


def _raw_header(part: EmailMessage, name: str) -> str | None:
    """A header as it came, unfolded, without the header parser (which may reject odd values)."""
    for header_name, value in part.raw_items():
        if header_name.lower() == name:
            return _fix_8bit(re.sub(r"[\r\n]", "", str(value)))
    return None


def _declared_transfer_encoding(part: EmailMessage) -> str:
    return (_raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()


def _transfer_encoding(part: EmailMessage) -> str:
    declared = _declared_transfer_encoding(part)
    if declared in _KNOWN_TRANSFER_ENCODINGS:
        return declared
    letters = re.sub(r"[^a-z0-9]", "", declared).removeprefix("x")
    return _TRANSFER_ENCODING_SPELLINGS.get(letters, declared)


def _disposition(part: EmailMessage) -> str:
    return (_raw_header(part, "content-disposition") or "").split(";", 1)[0].strip().lower()


def _content_id(part: EmailMessage) -> str:
    value = (_raw_header(part, "content-id") or "").strip()
    found = _ANGLE_ID.search(value)
    return _ID_JUNK.sub("", found.group(1) if found else value)


def _parameter(part: EmailMessage, header_name: str, parameter: str) -> str:
    value = _raw_header(part, header_name)
    if value is None:
        return ""
    try:
        header = _POLICY.header_factory(header_name, value)
        parsed, defects = header.params.get(parameter), header.defects
    except Exception:  # some malformed parameters make the header parser raise
        parsed, defects = None, [email_errors.InvalidHeaderDefect()]
    if parsed is None or defects:
        # Unquoted values with spaces or encoded words trip the strict parser; read them plainly.
        plain = re.search(rf'(?:^|;)\s*{parameter}\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value, re.IGNORECASE)
        if plain is not None:
            quoted, bare = plain.group(1), plain.group(2)
            parsed = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare.strip()
    parsed = _fix_surrogates(parsed or "")
    return _decode_words(parsed) if "=?" in parsed else parsed


def _filename(part: EmailMessage) -> str:
    name = _parameter(part, "content-disposition", "filename") or _parameter(part, "content-type", "name")
    return _clean_filename(name)


def _describe(part: EmailMessage) -> str:
    name = _filename(part)
    return f"the attachment '{name}'" if name else f"a part of type {part.get_content_type()}"


def _attachment_filename(part: _SpoolingMessage, content_type: str, index: int) -> str:
    name = _filename(part)
    if part.get_content_maintype() == "message":
        if not name:
            inner = part.get_payload(0) if part.is_multipart() else None
            subject = _raw_header(inner, "subject") if isinstance(inner, EmailMessage) else None
            # A subject is not a path: its slashes are kept as dashes rather than cut away.
            name = _clean_filename(re.sub(r"[/\\]", "-", _decode_words(subject or "")))
        if name and not name.lower().endswith(".eml"):
            name = _clean_filename(name + ".eml")
    return name or f"attachment-{index}{_extension(content_type)}"


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def _clean_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", _fix_surrogates(name))
    name = re.split(r"[/\\]", name)[-1]
    name = " ".join(_FILENAME_FORBIDDEN.sub("", re.sub(r"[\t\r\n]", " ", name)).split()).strip(" .")
    if len(name) > _FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: _FILENAME_MAX - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:_FILENAME_MAX].rstrip(" .")
    return name


# --- Message headers ---------------------------------------------------------------------------


class _Headers:
    """The top-level headers, decoded leniently."""

    def __init__(self, message: EmailMessage, notes: _Notes) -> None:
        self._notes = notes
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._values.setdefault(name.lower(), []).append(re.sub(r"[\r\n]", "", str(value)))

    def raw(self, name: str) -> str | None:
        values = self._values.get(name)
        return self._from_8bit(name, values[0]) if values else None

    def text(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            return ""
        try:
            header = _POLICY.header_factory(name, value)
            decoded = str(header)
            if any(isinstance(defect, email_errors.CharsetError) for defect in header.defects):
                self._notes.add(f"The {_title(name)} header names an unknown character set; it was guessed.")
        except Exception:  # the header parser raises on some malformed input
            decoded = _decode_words(value)
        return _clean_text(_fix_surrogates(decoded))

    def addresses(self, name: str) -> tuple[Address, ...]:
        values = self._values.get(name)
        if not values:
            return ()
        # Several To: lines are malformed but happen; nobody on any of them should be missed.
        value = _defuse_encoded_words(", ".join(self._from_8bit(name, item) for item in values))
        try:
            found = [(item.display_name, item.addr_spec) for item in _POLICY.header_factory(name, value).addresses]
        except Exception:  # the header parser raises on some malformed input
            found = getaddresses([value])
        addresses = []
        unreadable = 0
        for display_name, spec in found:
            email = _ID_JUNK.sub("", _fix_surrogates(spec)).strip("<>").lower()
            local, at, domain = email.rpartition("@")
            if not (local and at and domain):
                unreadable += 1
                continue
            display_name = _fix_surrogates(display_name)
            if "=?" in display_name:
                # An encoded word inside quotes is not decoded by the strict parser, but clients send it.
                display_name = _decode_words(display_name)
            addresses.append(Address(name=_clean_text(display_name), email=email))
        if unreadable:
            plural = "addresses" if unreadable > 1 else "address"
            self._notes.add(f"{unreadable} {plural} in the {_title(name)} header could not be read.")
        return tuple(addresses)

    def _from_8bit(self, name: str, value: str) -> str:
        fixed = _fix_8bit(value)
        if fixed != value and not _is_utf8(value):
            self._notes.add(f"The {_title(name)} header has unencoded non-ASCII text; it was read as Windows-1252.")
        return fixed


def _parse_date(value: str | None, notes: _Notes) -> datetime.datetime | None:
    if value is None or not value.strip():
        notes.add("The message has no Date header.")
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            date = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            notes.add(f"The Date header could not be read ({_clean_text(value)[:80]}).")
            return None
    if date.tzinfo is None:
        # RFC 5322 writes "-0000" for a time in UTC with no local zone; anything else lacked a zone.
        if not _ZONE_MINUS_ZERO.search(value):
            notes.add("The Date header has no time zone; UTC was assumed.")
        date = date.replace(tzinfo=_UTC)
    return date


def _message_ids(value: str) -> list[str]:
    bracketed = _ANGLE_ID.findall(value)
    candidates = bracketed if bracketed else value.split()
    return [cleaned for item in candidates if (cleaned := _ID_JUNK.sub("", item))]


# --- Text decoding -----------------------------------------------------------------------------


def _fix_8bit(value: str) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogate escapes) read as UTF-8, else Windows-1252."""
    return _fix_surrogates(value) if _SURROGATE_RUN.search(value) else value


def _is_utf8(value: str) -> bool:
    try:
        value.encode("ascii", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _fix_surrogates(value: str) -> str:
    def decode_run(run: re.Match[str]) -> str:
        data = run.group(0).encode("ascii", "surrogateescape")
        return _guess_decode(data)[0]

    value = _SURROGATE_RUN.sub(decode_run, value)
    return _LONE_SURROGATE.sub("\ufffd", value)


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Undeclared 8-bit text: UTF-8 when it is valid UTF-8, else the Windows superset of Latin-1."""
    for codec, label in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
        try:
            return data.decode(codec), label
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "ISO-8859-1"


def _codec_for(charset: str) -> str | None:
    """Python's codec for a MIME charset label, or None when no text codec matches it."""
    if not _CHARSET_NAME.fullmatch(charset):
        return None
    charset = _CHARSET_ALIASES.get(charset, charset)
    charset = re.sub(r"^(?:windows|cp)[-_ ]?(\d+)$", r"cp\1", charset)
    try:
        # Decoding a byte rejects codecs that are not text encodings (base64, zlib, rot13...).
        b"\x00".decode(charset)
    except LookupError:
        return None
    except (UnicodeError, ValueError):
        pass  # a text codec that does not accept this byte
    return codecs.lookup(charset).name


def _decode_text(data: bytes, charset: str | None, label: str, notes: _Notes) -> str:
    declared = (charset or "").strip().strip('"').lower()
    codec = _codec_for(declared) if declared else "ascii"
    if codec is None:
        text, used = _guess_decode(data)
        notes.add(f"{_sentence(label)} uses an unknown character set ({declared}); it was read as {used}.")
        return text
    if codec in ("ascii", "iso8859-1", "cp1252"):
        if data.isascii():
            return data.decode("ascii")
        # Mail software labels text ASCII or Latin-1 by default whatever it holds; valid UTF-8
        # is never an accident, and Latin-1 text in practice uses Windows-1252's extra characters.
        text, used = _guess_decode(data)
        if used == "UTF-8" or codec == "ascii":
            notes.add(f"{_sentence(label)} is labelled {declared or 'US-ASCII'} but was read as {used}.")
        elif codec == "iso8859-1" and any(0x80 <= byte <= 0x9F for byte in data):
            notes.add(f"{_sentence(label)} is labelled {declared} but uses Windows-1252 characters.")
        return text
    try:
        return data.decode(codec)
    except (UnicodeError, ValueError):
        pass
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            notes.add(f"{_sentence(label)} is labelled {declared} but was read as UTF-8.")
            return text
    notes.add(f"{_sentence(label)} has characters that are not valid {declared}; they were replaced.")
    return _decode_replacing(data, codec)


def _decode_replacing(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError):
        # A few codecs (idna, punycode...) raise whatever the error handler says.
        return _guess_decode(data)[0]


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words, the lenient way, for values the strict header parser refused."""
    try:
        chunks = decode_header(value)
    except (ValueError, email_errors.MessageError):
        return value
    decoded = []
    for data, charset in chunks:
        if isinstance(data, str):
            decoded.append(data)
        elif charset is None:
            # decode_header hands back the text between encoded words in this form.
            decoded.append(data.decode("raw-unicode-escape", "replace"))
        elif codec := _codec_for(charset.lower()):
            decoded.append(_decode_replacing(data, codec))
        else:
            decoded.append(_guess_decode(data)[0])
    return "".join(decoded)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(header_name: str) -> str:
    return "-".join(word.capitalize() for word in header_name.split("-"))


def _defuse_encoded_words(value: str) -> str:
    """Re-encode any encoded word that decodes to control characters, without them.

    A display name like =?utf-8?q?Ann=0D=0ABcc:_x@y?= makes the address parser give up on the
    whole header; cleaned first, it stays what it is: a harmless, odd display name.
    """

    def defuse(word: re.Match[str]) -> str:
        decoded = _decode_words(word.group(0))
        if not _CONTROL_CHARS.search(decoded):
            return word.group(0)
        cleaned = " ".join(_CONTROL_CHARS.sub(" ", decoded).split())
        return "=?utf-8?b?" + base64.b64encode(cleaned.encode()).decode("ascii") + "?="

    return _ENCODED_WORD.sub(defuse, value)


def _clean_text(value: str) -> str:
    return " ".join(_CONTROL_CHARS.sub(" ", _LONE_SURROGATE.sub("\ufffd", value)).split())


def _url_unquote(value: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda found: chr(int(found.group(1), 16)), value)


# --- HTML to text ------------------------------------------------------------------------------

# Not "head": mail HTML often leaves it unclosed, and skipping to a missing </head> would lose the body.
_SKIPPED_ELEMENTS = {"script", "style", "template", "title"}
_BLOCK_ELEMENTS = {
    "address", "article", "blockquote", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "ol", "p", "pre", "section", "table", "tr", "ul",
}
_LINE_BREAKS = re.compile(r"[\r\n]")
_TAG_START = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_SKIPPED_END = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in _SKIPPED_ELEMENTS}


def _html_to_text(html: str) -> str:
    """Readable text from an HTML body: tags dropped, blocks on their own lines, entities decoded.

    A single forward scan rather than html.parser, which takes quadratic time on some malformed
    input (thousands of unclosed "<a") and raises on other garbage; mail bodies are untrusted.
    """
    pieces: list[str] = []
    position, length = 0, len(html)
    while position < length:
        opening = html.find("<", position)
        if opening < 0:
            opening = length
        # Line breaks in HTML source are only spaces; the tags decide where lines end.
        pieces.append(_LINE_BREAKS.sub(" ", unescape(html[position:opening])))
        if opening == length:
            break
        tag = _TAG_START.match(html, opening)
        if html.startswith("<!--", opening):
            closing = html.find("-->", opening + 4)
            position = length if closing < 0 else closing + 3
        elif tag or html.startswith(("<!", "<?"), opening):
            closing = html.find(">", opening)
            if closing < 0:
                break  # an unfinished tag at the very end shows nothing, as in a browser
            position = closing + 1
            if tag:
                position = _tag_text(tag.group(2).lower(), bool(tag.group(1)), html, position, pieces)
        else:
            pieces.append("<")  # a bare "<" in text, as in "a < b"
            position = opening + 1
    lines = [" ".join(line.split()) for line in "".join(pieces).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _tag_text(name: str, closing: bool, html: str, position: int, pieces: list[str]) -> int:
    """Add what a tag means for the text; return where scanning continues."""
    if name in _SKIPPED_ELEMENTS and not closing:
        end = _SKIPPED_END[name].search(html, position)
        return len(html) if end is None else end.end()
    if name == "br":
        pieces.append("\n")
    elif name == "li":
        if not closing:
            pieces.append("\n- ")
    elif name in _BLOCK_ELEMENTS:
        pieces.append("\n")
    elif name in ("td", "th") and not closing:
        pieces.append(" ")
    return position
