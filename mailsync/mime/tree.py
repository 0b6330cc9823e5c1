"""Walking the parsed tree: the body, the attachments, and what the message says about itself."""

from __future__ import annotations

import binascii
import mimetypes
import re
from dataclasses import dataclass
from email import errors as email_errors

from providers.html_text import html_to_text

from .digest import content_digest
from .headers import Headers, parse_date
from .parts import attachment_filename, body_kind, clean_filename, content_id, disposition
from .reading import new_parser
from .spool import Spool, SpoolingMessage, Stored, decoded_chunks
from .text import codec_for, guess_decode, message_ids, sentence
from .values import Notes, ParsedAttachment, ParsedEmail, UnparseableMessage

_SMIME_CONTENT_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
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
_BOUNDARY_LINE = re.compile(r"^--([^\r\n]{1,200}?)[ \t]*\r?$", re.MULTILINE)
_CID_REFERENCE = re.compile(r"cid:([^\"'\s>)]+)", re.IGNORECASE)
# A file uuencoded into the text, as mail did before MIME: "begin 644 name" ... "end".
_UU_BEGIN = re.compile(r"^begin(?:-base64)? [0-7]{3,4} ([^\n]+)\n", re.MULTILINE)
_UU_END = re.compile(r"^end[ \t]*$\n?", re.MULTILINE)


@dataclass
class _Leaf:
    part: SpoolingMessage
    kind: str  # "text/plain" or "text/html" for a body candidate, "" for an attachment
    in_alternative: bool


def interpret(root: SpoolingMessage, size: int, spool: Spool, notes: Notes) -> ParsedEmail:
    headers = Headers(root, notes)
    subject = headers.text("subject")
    senders = headers.addresses("from")
    to, cc, bcc = headers.addresses("to"), headers.addresses("cc"), headers.addresses("bcc")
    reply_to = headers.addresses("reply-to")
    date = parse_date(headers.raw("date"), notes)
    ids = message_ids(headers.raw("message-id") or "")
    if not ids:
        notes.add("The message has no Message-ID; copies of it are recognised by their addresses, date, "
                  "subject, text and attachments instead.")
    in_reply_to = message_ids(headers.raw("in-reply-to") or "")
    references = tuple(dict.fromkeys(message_ids(headers.raw("references") or "")))
    if not senders:
        notes.add("The message has no readable sender (From).")

    leaves: list[_Leaf] = []
    _collect(root, False, leaves, spool, notes)
    text_leaf = _pick_body(leaves, "text/plain")
    html_leaf = _pick_body(leaves, "text/html")
    text_body = body_text(text_leaf.part, "the text body", notes) if text_leaf else ""
    html_body = body_text(html_leaf.part, "the HTML body", notes) if html_leaf else ""
    html_text = html_to_text(html_body) if html_body.strip() else ""
    uuencoded: list[tuple[str, Stored]] = []
    if text_body and "begin " in text_body:
        text_body = _take_uuencoded(text_body, uuencoded, spool, notes)
    if not text_body.strip() and html_text:
        text_body = html_text

    referenced_ids = {_url_unquote(found).lower() for found in _CID_REFERENCE.findall(html_body)}
    attachments: list[ParsedAttachment] = []
    for leaf in leaves:
        if leaf is text_leaf or leaf is html_leaf:
            continue
        attachment = _attachment(leaf.part, len(attachments) + 1, referenced_ids, spool)
        if attachment is not None:
            attachments.append(attachment)
    for name, stored in uuencoded:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        attachments.append(ParsedAttachment(filename=name, content_type=content_type, size=stored.size,
                                            content_id="", inline=False, path=stored.path, sha256=stored.sha256))

    if not (senders or to or cc or bcc or subject or ids or date or text_body.strip() or attachments):
        raise UnparseableMessage("Nothing readable was found in the message.")
    digest = content_digest(
        from_=senders, to=to, cc=cc, reply_to=reply_to, subject=subject, date=date, in_reply_to=in_reply_to,
        references=references, body=html_text if html_body.strip() else text_body,
        attachment_digests=[a.sha256 for a in attachments] + [part.sha256 for part in spool.left_out],
    )
    return ParsedEmail(
        subject=subject,
        from_=senders[0] if senders else None,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        date=date,
        message_id=ids[0] if ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        text_body=text_body,
        html_body=html_body,
        attachments=tuple(attachments),
        problems=notes.as_tuple(),
        size=size,
        content_digest=digest,
    )


def _collect(part: SpoolingMessage, in_alternative: bool, leaves: list[_Leaf], spool: Spool, notes: Notes) -> None:
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
            if isinstance(child, SpoolingMessage):
                _collect(child, inside_alternative, leaves, spool, notes)
        return
    if content_type in _SMIME_CONTENT_TYPES:
        notes.add("Part of the message is protected with S/MIME; it is kept as an attachment but could not be read.")
    leaves.append(_Leaf(part, body_kind(part), in_alternative))


def _recover_multipart(part: SpoolingMessage, spool: Spool, notes: Notes) -> SpoolingMessage | None:
    """A multipart section whose boundary is missing or wrong: find the boundary the parts really use."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a damaged encoding must not cost the rest of the message
        data = None
    if not isinstance(data, bytes):
        data = b""
    text = data.decode("ascii", "surrogateescape")
    # The first separator line that really separates: one that a later line repeats, or closes.
    found = next((line for line in _BOUNDARY_LINE.finditer(text)
                  if text.count("--" + line.group(1), line.end()) and line.group(1).strip("-")), None)
    if found is None:
        notes.add("A section of the message says it has several parts but they could not be told apart; "
                  "it was read as plain text.")
        return None
    boundary = found.group(1).replace('"', "")
    header = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\r\n\r\n'
    parser = new_parser(spool)
    parser.feed(header.encode("utf-8", "surrogateescape"))
    parser.feed(data)
    recovered = parser.close()
    if not isinstance(recovered, SpoolingMessage) or not recovered.is_multipart():
        notes.add("A section of the message says it has several parts but they could not be told apart; "
                  "it was read as plain text.")
        return None
    notes.add("A section of the message did not say where its parts begin; they were found by their separator lines.")
    return recovered


def _pick_body(leaves: list[_Leaf], kind: str) -> _Leaf | None:
    candidates = [leaf for leaf in leaves if leaf.kind == kind]
    for leaf in candidates:
        if leaf.in_alternative:
            return leaf
    return candidates[0] if candidates else None


def body_text(part: SpoolingMessage, label: str, notes: Notes) -> str:
    data = b"".join(decoded_chunks(part, label, notes))
    text = _decode_text(data, part.get_content_charset(), label, notes)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # PostgreSQL text columns refuse NUL characters.
    return text.replace("\x00", "")


def _decode_text(data: bytes, charset: str | None, label: str, notes: Notes) -> str:
    declared = (charset or "").strip().strip('"').lower()
    codec = codec_for(declared) if declared else "ascii"
    if codec is None:
        text, used = guess_decode(data)
        notes.add(f"{sentence(label)} uses an unknown character set ({declared}); it was read as {used}.")
        return text
    if codec in ("ascii", "iso8859-1", "cp1252"):
        if data.isascii():
            return data.decode("ascii")
        # Mail software labels text ASCII or Latin-1 by default whatever it holds; valid UTF-8
        # is never an accident, and Latin-1 text in practice uses Windows-1252's extra characters.
        text, used = guess_decode(data)
        if used == "UTF-8" or codec == "ascii":
            notes.add(f"{sentence(label)} is labelled {declared or 'US-ASCII'} but was read as {used}.")
        elif codec == "iso8859-1" and any(0x80 <= byte <= 0x9F for byte in data):
            notes.add(f"{sentence(label)} is labelled {declared} but uses Windows-1252 characters.")
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
            notes.add(f"{sentence(label)} is labelled {declared} but was read as UTF-8.")
            return text
    notes.add(f"{sentence(label)} has characters that are not valid {declared}; they were replaced.")
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError):
        # A few codecs (idna, punycode...) raise whatever the error handler says.
        return guess_decode(data)[0]


def _take_uuencoded(text: str, found: list[tuple[str, Stored]], spool: Spool, notes: Notes) -> str:
    """Files uuencoded into the text become attachments; the text keeps what a person wrote."""
    kept: list[str] = []
    position = 0
    while (begin := _UU_BEGIN.search(text, position)) is not None:
        end = _UU_END.search(text, begin.end())
        if end is None:
            break
        data, decoded, damaged = bytearray(), 0, 0
        for line in text[begin.end() : end.start()].split("\n"):
            if not line.strip() or line in ("`", " "):
                continue
            try:
                data += binascii.a2b_uu(line)
                decoded += 1
            except binascii.Error:
                damaged += 1
        if damaged > decoded // 10:
            # Not a uuencoded file after all (prose between a "begin" and an "end" line): keep the text.
            kept.append(text[position : end.end()])
            position = end.end()
            continue
        name = clean_filename(begin.group(1)) or f"attachment-{len(found) + 1}.bin"
        stored = spool.store_bytes(bytes(data), f"the uuencoded file '{name}'")
        if stored is not None:
            found.append((name, stored))
        notes.add(f"The text held a uuencoded file ('{name}'); it is kept as an attachment."
                  + (" A few of its lines were damaged." if damaged else ""))
        kept.append(text[position : begin.start()])
        position = end.end()
    kept.append(text[position:])
    return "".join(kept)


def _attachment(part: SpoolingMessage, index: int, referenced_ids: set[str], spool: Spool) -> ParsedAttachment | None:
    stored = part.stored if part.spooled else spool.store(part)
    if stored is None:
        return None
    content_type = part.get_content_type()
    part_id = content_id(part)
    return ParsedAttachment(
        filename=attachment_filename(part, content_type, index),
        content_type=content_type,
        size=stored.size,
        content_id=part_id,
        inline=bool(part_id) and disposition(part) != "attachment" and part_id.lower() in referenced_ids,
        path=stored.path,
        sha256=stored.sha256,
    )


def _url_unquote(value: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda found: chr(int(found.group(1), 16)), value)
