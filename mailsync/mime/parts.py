"""A part's own headers, read from their raw text: type, transfer encoding, disposition, file name."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from email.message import Message
from email.utils import collapse_rfc2231_value

from .text import ID_JUNK, decode_words, fix_surrogates

BODY_TYPES = ("text/plain", "text/html")
KNOWN_TRANSFER_ENCODINGS = {
    "", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue",
}
# Misspellings seen in the wild ("base-64", "Quoted Printable", "x-base64"), by their letters and digits.
_TRANSFER_ENCODING_SPELLINGS = {"base64": "base64", "quotedprintable": "quoted-printable", "7bit": "7bit",
                                "8bit": "8bit"}
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
_FILENAME_MAX = 200
# Bidirectional overrides let "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_LINE_BREAKS = re.compile(r"[\r\n]")


def raw_header(part: Message, name: str) -> str | None:
    """A header as it came, unfolded, raw 8-bit bytes still as surrogate escapes."""
    for header_name, value in part._headers:  # type: ignore[attr-defined]  # the raw (name, value) pairs
        if header_name.lower() == name:
            return _LINE_BREAKS.sub("", value) if isinstance(value, str) else str(value)
    return None


def declared_transfer_encoding(part: Message) -> str:
    return (raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()


def transfer_encoding(part: Message) -> str:
    declared = declared_transfer_encoding(part)
    if declared in KNOWN_TRANSFER_ENCODINGS:
        return declared
    letters = re.sub(r"[^a-z0-9]", "", declared).removeprefix("x")
    return _TRANSFER_ENCODING_SPELLINGS.get(letters, declared)


def disposition(part: Message) -> str:
    return (raw_header(part, "content-disposition") or "").split(";", 1)[0].strip().lower()


def content_id(part: Message) -> str:
    value = fix_surrogates((raw_header(part, "content-id") or "").strip())
    found = _ANGLE_ID.search(value)
    return ID_JUNK.sub("", found.group(1) if found else value)


def body_kind(part: Message) -> str:
    """"text/plain" or "text/html" for a part that can be the message's body, else ""."""
    content_type = part.get_content_type()
    if content_type in BODY_TYPES and disposition(part) != "attachment":
        return content_type
    return ""


def parameter(part: Message, header_name: str, name: str) -> str:
    """A parameter (RFC 2045, with RFC 2231 continuations and charsets), decoded for a person."""
    value = raw_header(part, header_name)
    if value is None:
        return ""
    try:
        found = part.get_param(name, None, header_name)
        parsed = collapse_rfc2231_value(found) if found is not None else None
    except Exception:  # some malformed parameters make the parameter parser raise
        parsed = None
    if parsed is None:
        # Unquoted values with spaces, or a parameter the list parser lost: read it plainly.
        plain = re.search(rf'(?:^|;)\s*{name}\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value, re.IGNORECASE)
        if plain is not None:
            quoted, bare = plain.group(1), plain.group(2)
            parsed = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare.strip()
    # Encoded words in a parameter are not standard, but clients send them.
    return decode_words(parsed or "")


def filename(part: Message) -> str:
    name = parameter(part, "content-disposition", "filename") or parameter(part, "content-type", "name")
    return clean_filename(name)


def describe(part: Message) -> str:
    name = filename(part)
    return f"the attachment '{name}'" if name else f"a part of type {part.get_content_type()}"


def attachment_filename(part: Message, content_type: str, index: int) -> str:
    name = filename(part)
    if part.get_content_maintype() == "message":
        if not name:
            inner = part.get_payload(0) if part.is_multipart() else None
            subject = raw_header(inner, "subject") if isinstance(inner, Message) else None
            # A subject is not a path: its slashes are kept as dashes rather than cut away.
            name = clean_filename(re.sub(r"[/\\]", "-", decode_words(subject or "")))
        if name and not name.lower().endswith(".eml"):
            name = clean_filename(name + ".eml")
    return name or f"attachment-{index}{extension(content_type)}"


def extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def clean_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", fix_surrogates(name))
    name = re.split(r"[/\\]", name)[-1]
    name = " ".join(_FILENAME_FORBIDDEN.sub("", re.sub(r"[\t\r\n]", " ", name)).split()).strip(" .")
    if len(name) > _FILENAME_MAX:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 16:
            name = stem[: _FILENAME_MAX - len(suffix) - 1].rstrip(" .") + "." + suffix
        else:
            name = name[:_FILENAME_MAX].rstrip(" .")
    return name
