"""Text decoding: charsets, raw 8-bit bytes, RFC 2047 encoded words, and cleaning one-line values."""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Callable

# Labels seen in real mail that Python does not know, or knows as a narrower charset than the
# sender actually used (mail labelled GB2312 routinely contains GBK characters).
CHARSET_ALIASES = {
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
_CHARSET_NAME = re.compile(r"[a-z0-9._:+-]{1,40}")
SURROGATE_RUN = re.compile(r"[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 and C1 controls and Unicode line/paragraph separators: none belongs in a one-line value, and
# CR/LF smuggled in through encoded words would otherwise let a value pose as extra headers.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# An RFC 2047 encoded word, leniently: raw 8-bit bytes (surrogate escapes) and stray spaces inside
# the encoded text happen in real mail, and a language suffix (RFC 2231, "utf-8*en") is allowed.
ENCODED_WORD = re.compile(r"=\?([^?\s]+?)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\r\n]*?)\?=")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
ID_JUNK = re.compile(r"[\s\x00-\x1f\x7f]+")


def has_8bit(value: str) -> bool:
    return SURROGATE_RUN.search(value) is not None


def is_utf8(value: str) -> bool:
    try:
        value.encode("ascii", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return False
    return True


def fix_surrogates(value: str) -> str:
    """Raw 8-bit bytes (kept by the parser as surrogate escapes) read as UTF-8, else Windows-1252."""
    if not SURROGATE_RUN.search(value):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value

    def decode_run(run: re.Match[str]) -> str:
        return guess_decode(run.group(0).encode("ascii", "surrogateescape"))[0]

    # A UTF-8 character's bytes can be split by ASCII nowhere, so decoding run by run is exact.
    return _LONE_SURROGATE.sub("\ufffd", SURROGATE_RUN.sub(decode_run, value))


def guess_decode(data: bytes) -> tuple[str, str]:
    """Undeclared 8-bit text: UTF-8 when it is valid UTF-8, else the Windows superset of Latin-1."""
    for codec, label in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
        try:
            return data.decode(codec), label
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "ISO-8859-1"


def codec_for(charset: str) -> str | None:
    """Python's codec for a MIME charset label, or None when no text codec matches it."""
    if not _CHARSET_NAME.fullmatch(charset):
        return None
    charset = CHARSET_ALIASES.get(charset, charset)
    charset = re.sub(r"^(?:windows|cp)[-_ ]?(\d+)$", r"cp\1", charset)
    try:
        # Decoding a byte rejects codecs that are not text encodings (base64, zlib, rot13...).
        b"\x00".decode(charset)
    except LookupError:
        return None
    except (UnicodeError, ValueError):
        pass  # a text codec that does not accept this byte
    return codecs.lookup(charset).name


def decode_replacing(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError):
        # A few codecs (idna, punycode...) raise whatever the error handler says.
        return guess_decode(data)[0]


def decode_words(value: str, on_unknown_charset: Callable[[str], None] | None = None) -> str:
    """A header value as a person reads it: encoded words decoded, raw 8-bit bytes guessed.

    Bytes inside an encoded word are decoded with the word's own charset, whether they came
    encoded or raw (an ISO-8859-1 word holding an unencoded 0xF6 is still ISO-8859-1); bytes
    outside any word are read as UTF-8, else Windows-1252. Whitespace between two adjacent encoded
    words is dropped (RFC 2047, section 6.2).
    """
    if "=?" not in value:
        return fix_surrogates(value)
    pieces: list[str] = []
    position = 0
    after_word = False
    for word in ENCODED_WORD.finditer(value):
        between = value[position : word.start()]
        if not (after_word and not between.strip()):
            pieces.append(fix_surrogates(between))
        pieces.append(_decode_word(word, on_unknown_charset))
        position, after_word = word.end(), True
    pieces.append(fix_surrogates(value[position:]))
    return "".join(pieces)


def _decode_word(word: re.Match[str], on_unknown_charset: Callable[[str], None] | None) -> str:
    charset, encoding, encoded = word.group(1).lower(), word.group(2).lower(), word.group(3)
    data = encoded.encode("utf-8", "surrogateescape")
    if encoding == "q":
        data = binascii.a2b_qp(data, header=True)
    else:
        letters = _NOT_BASE64.sub(b"", data)
        letters = letters[: len(letters) - (1 if len(letters) % 4 == 1 else 0)]
        try:
            data = binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))
        except binascii.Error:
            return word.group(0)
    codec = codec_for(charset)
    if codec is None:
        if on_unknown_charset is not None:
            on_unknown_charset(charset)
        return guess_decode(data)[0]
    if codec == "iso8859-1":
        # Text labelled Latin-1 in practice uses Windows-1252's extra characters (dashes, quotes, €).
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return decode_replacing(data, codec)


def clean_text(value: str) -> str:
    """One line of text: controls and line breaks become spaces, runs of spaces one."""
    return " ".join(CONTROL_CHARS.sub(" ", _LONE_SURROGATE.sub("\ufffd", value)).split())


def message_ids(value: str) -> list[str]:
    bracketed = _ANGLE_ID.findall(value)
    candidates = bracketed if bracketed else value.split()
    return [cleaned for item in candidates if (cleaned := ID_JUNK.sub("", item))]


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def title(header_name: str) -> str:
    return "-".join(word.capitalize() for word in header_name.split("-"))
