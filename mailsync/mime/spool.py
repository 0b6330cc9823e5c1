"""Spooling payloads to disk as the parser produces them, with their transfer encoding undone."""

from __future__ import annotations

import binascii
import functools
import hashlib
import os
import quopri
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Policy
from pathlib import Path
from typing import Any, BinaryIO

from .parts import KNOWN_TRANSFER_ENCODINGS, body_kind, declared_transfer_encoding, describe, transfer_encoding
from .text import sentence
from .values import Notes

_DECODE_BLOCK = 1024 * 1024
# Attached messages are written back out byte for byte as far as possible: headers as they came,
# 8-bit bodies left alone, CRLF line ends as RFC 5322 stores them.
_EML_POLICY = email_policy.default.clone(linesep="\r\n", refold_source="none", cte_type="8bit", max_line_length=0)
_FINAL_LINE_END = re.compile(r"(?:\r\n|\r|\n)\Z")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")


@dataclass(frozen=True)
class Measured:
    """A part's size and digest: what tells messages apart, whether the part is kept or, over the
    size limit, left out."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Stored(Measured):
    path: Path


class _Sink:
    """A spool file that counts and hashes what is written, and stops writing past a limit."""

    def __init__(self, file: BinaryIO, limit: int) -> None:
        self._file = file
        self._limit = limit
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def too_large(self) -> bool:
        return self.size > self._limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self._digest.update(data)
        if not self.too_large:
            self._file.write(data)
        return len(data)

    def sha256(self) -> str:
        return self._digest.hexdigest()


class Spool:
    def __init__(self, directory: Path, limit: int, notes: Notes) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._limit = limit
        self._notes = notes
        self._paths: list[Path] = []
        self.left_out: list[Measured] = []
        self.message_factory = functools.partial(SpoolingMessage, spool=self)

    def store(self, part: SpoolingMessage, payload: str | None = None) -> Stored | None:
        """Write the part's decoded content to a new spool file; None when it is over the limit.

        `payload` is the part's payload when the caller already holds it: reading it back through
        `get_payload()` would make a full transient copy (it checks the text for undecodable bytes).
        """
        return self._write(lambda sink: write_part(part, sink, self._notes, payload), describe(part))

    def store_bytes(self, data: bytes, label: str) -> Stored | None:
        return self._write(lambda sink: sink.write(data), label)

    def _write(self, fill: Any, label: str) -> Stored | None:
        descriptor, name = tempfile.mkstemp(dir=self._directory, prefix="mime-", suffix=".part")
        path = Path(name)
        self._paths.append(path)
        with os.fdopen(descriptor, "wb") as file:
            sink = _Sink(file, self._limit)
            fill(sink)
        if sink.too_large:
            self._paths.remove(path)
            path.unlink()
            self.left_out.append(Measured(sink.size, sink.sha256()))
            limit_mb = self._limit / (1024 * 1024)
            self._notes.add(f"{sentence(label)} is larger than {limit_mb:g} MB and was not kept.")
            return None
        return Stored(size=sink.size, sha256=sink.sha256(), path=path)

    def discard_all(self) -> None:
        for path in self._paths:
            path.unlink(missing_ok=True)
        self._paths.clear()


class SpoolingMessage(Message):
    """A parsed part that moves an attachment's payload to disk as soon as the parser hands it over.

    The feed parser builds each leaf's payload as one string and passes it to `set_payload`; taking
    it there means a large attachment is decoded to disk and released before the next part is
    read, instead of every encoded payload staying in memory until the whole message is parsed.

    The tree is parsed with the compat32 policy: headers stay the raw text they came as, and only
    the few a person sees are decoded (`headers.Headers`). The modern policy's header registry
    parses every header of every part, most of a parse's time, for values nobody reads.
    """

    def __init__(self, policy: Policy | None = None, *, spool: Spool | None = None) -> None:
        super().__init__(policy or email_policy.compat32)
        self._spool = spool
        self._container: SpoolingMessage | None = None
        self._type: tuple[tuple[str | None, str], str] | None = None
        self.spooled = False
        self.stored: Stored | None = None

    def get(self, name: str, failobj: Any = None) -> Any:
        # The raw text, never compat32's Header object for a value with 8-bit bytes: the parser
        # and the parameter helpers only split it on ";" and "=".
        name = name.lower()
        for header_name, value in self._headers:  # type: ignore[attr-defined]
            if header_name.lower() == name:
                return value
        return failobj

    def get_content_type(self) -> str:
        # Asked dozens of times per part by the parser and by us: remembered for the header text.
        key = (self.get("content-type"), self.get_default_type())
        if self._type is not None and self._type[0] == key:
            return self._type[1]
        value, content_type = key
        if value is not None:
            content_type = "".join(value.split(";", 1)[0].split()).strip('"').lower()
            maintype, slash, subtype = content_type.partition("/")
            if not (maintype and slash and subtype) or "/" in subtype:
                content_type = "text/plain"
        self._type = (key, content_type)
        return content_type

    # Parameter decoding (RFC 2231) raises on some malformed values; a parameter that cannot be
    # read is treated as absent, and a multipart without its boundary is recovered later.
    def get_param(self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True) -> Any:
        try:
            return super().get_param(param, failobj, header, unquote)
        except Exception:
            return failobj

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
        if isinstance(payload, SpoolingMessage):
            payload._container = self

    def set_payload(self, payload: Any, charset: Any = None) -> None:
        if self._spool is not None and isinstance(payload, str) and self._spools_early():
            inside_multipart = self._container is not None and self._container.get_content_maintype() == "multipart"
            # The line end before a boundary belongs to the boundary (RFC 2046); the parser only trims
            # it after this call, too late for what we write to disk. Base64 ignores line ends, and
            # not copying a large base64 payload just to trim it matters for memory.
            if inside_multipart and transfer_encoding(self) != "base64":
                payload = _FINAL_LINE_END.sub("", payload)
            super().set_payload(payload, charset)
            self.stored = self._spool.store(self, payload)
            self.spooled = True
            payload = ""
        super().set_payload(payload, charset)

    def _spools_early(self) -> bool:
        if self.get_content_maintype() in ("multipart", "message") or body_kind(self):
            return False
        # Parts of an attached message stay in memory: the whole message is saved as one .eml later.
        container = self._container
        while container is not None:
            if container.get_content_maintype() == "message":
                return False
            container = container._container
        return True


def write_part(part: SpoolingMessage, sink: _Sink, notes: Notes, payload: str | None) -> None:
    if part.get_content_maintype() == "message" and part.is_multipart():
        generator = BytesGenerator(sink, mangle_from_=False, policy=_EML_POLICY)
        for position, inner in enumerate(part.get_payload()):
            if position:
                sink.write(b"\r\n")
            try:
                generator.flatten(inner, unixfrom=False)
            except Exception:  # re-serialising a damaged message can fail in many ways
                notes.add(f"{sentence(describe(part))} could not be saved completely.")
        return
    for chunk in decoded_chunks(part, describe(part), notes, payload):
        sink.write(chunk)


def decoded_chunks(part: Message, label: str, notes: Notes, payload: str | None = None) -> Iterator[bytes]:
    """The part's content with its transfer encoding undone, in pieces for base64 (the large case)."""
    declared = declared_transfer_encoding(part)
    encoding = transfer_encoding(part)
    if encoding != declared:
        notes.add(f"{sentence(label)} declares the transfer encoding '{declared}'; it was read as {encoding}.")
    elif encoding not in KNOWN_TRANSFER_ENCODINGS:
        notes.add(f"{sentence(label)} declares an unknown transfer encoding ({encoding}); it was kept as it is.")
    if encoding == "base64":
        yield from _base64_chunks(part.get_payload() if payload is None else payload, label, notes)
        return
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a damaged encoding must not cost the rest of the message
        notes.add(f"{sentence(label)} could not be decoded and was left out.")
        return
    if isinstance(data, bytes):
        # get_payload only knows the standard spelling: misspelt quoted-printable comes back encoded.
        yield quopri.decodestring(data) if encoding == "quoted-printable" != declared else data


def _base64_chunks(payload: Any, label: str, notes: Notes) -> Iterator[bytes]:
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
        notes.add(f"{sentence(label)} was damaged in transit (invalid base64); what could be read was kept.")
