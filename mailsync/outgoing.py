"""Outgoing mail: checking what the user typed, and building the RFC 5322 message.

Everything a header will hold is checked here first, so nothing typed into the compose form can
add a header of its own (a CR or LF in a subject or an address would start a new header line, such
as ``Bcc:``). The message itself is built with ``email.message.EmailMessage`` and the default
policy, which encodes non-ASCII names and subjects (RFC 2047) and attachment filenames (RFC 2231)
and refuses header values with line breaks as a second guard.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

MAX_RECIPIENTS = 100
MAX_SUBJECT_LENGTH = 900  # RFC 5322's line limit is 998, with room for "Subject: " and encoding
LINE_BREAKS = ("\r", "\n", "\x00")
# What people type for one recipient: an address, <an address>, or Name <an address>.
ADDRESS_ENTRY = re.compile(r"(?:[^<>]*<(?P<address>[^<>\s]+)>|(?P<bare>[^<>\s]+))")

_validate_email = EmailValidator(message="is not a valid email address")


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    content: bytes


def refuse_line_breaks(value: str, *, field: str) -> str:
    """The value itself, or a ValidationError when it holds a line break (header injection)."""
    if any(character in value for character in LINE_BREAKS):
        raise ValidationError(f"Line breaks aren't allowed in {field}.")
    return value


def parse_addresses(text: str, *, field: str) -> list[str]:
    """Addresses typed as ``a@x.com, Name <b@y.com>; c@z.com``: bare lower-cased addresses, each
    checked with Django's EmailValidator, in order, without repeats. Display names typed here are
    dropped: recipients are named by their address."""
    refuse_line_breaks(text, field=field)
    addresses: list[str] = []
    pieces = [piece.strip() for piece in text.replace(";", ",").split(",")]
    for piece in pieces:
        if not piece:
            continue
        match = ADDRESS_ENTRY.fullmatch(piece)
        if match is None:
            raise ValidationError(f"“{piece}” is not a valid email address.")
        address = ascii_address(match.group("address") or match.group("bare"))
        try:
            _validate_email(address)
            Address(addr_spec=address)  # what the message will need to hold it
        except (ValidationError, ValueError, IndexError) as exc:
            raise ValidationError(f"“{piece}” is not a valid email address.") from exc
        lowered = address.lower()
        if lowered not in addresses:
            addresses.append(lowered)
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError(f"Send to at most {MAX_RECIPIENTS} addresses at a time.")
    return addresses


def ascii_address(address: str) -> str:
    """An address with an internationalised domain written the way mail servers read it (IDNA);
    the local part must stay ASCII (SMTPUTF8 mail is not sent from here)."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address  # left for the validator to refuse


def clean_subject(subject: str) -> str:
    subject = refuse_line_breaks(subject, field="the subject").strip()
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ValidationError(f"Keep the subject under {MAX_SUBJECT_LENGTH} characters.")
    return subject


def guess_content_type(filename: str, declared: str = "") -> str:
    """The attachment's type from its name (what the recipient's mail program goes by), else what
    the browser declared, else generic bytes."""
    guessed, _encoding = mimetypes.guess_type(filename, strict=False)
    candidate = guessed or declared or "application/octet-stream"
    maintype, _, subtype = candidate.partition("/")
    if not subtype or any(character in candidate for character in (*LINE_BREAKS, ";", " ")):
        return "application/octet-stream"
    return f"{maintype}/{subtype}".lower()


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID in the sender's domain, set before the first attempt."""
    return email.utils.make_msgid(domain=domain)


def build_mime(
    *,
    from_address: str,
    from_name: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    body: str,
    message_id: str,
    date: dt.datetime,
    html_body: str = "",
    in_reply_to: str = "",
    references: Sequence[str] = (),
    attachments: Iterable[AttachmentFile] = (),
) -> bytes:
    """The complete message as bytes with CRLF line endings, ready for ``send_mime``: the text, and
    with ``html_body`` the same text as HTML (multipart/alternative, text first as RFC 2046 5.1.4
    orders them), then the attachments. A reply names what it answers (``in_reply_to``) and the
    thread above it (``references``, oldest first), as RFC 5322 3.6.4 says."""
    message = EmailMessage()
    # headerregistry.Address refuses CR/LF in either part; the policy encodes a non-ASCII name.
    sender_name = refuse_line_breaks(from_name, field="the sender name")
    message["From"] = Address(display_name=sender_name, addr_spec=from_address)
    message["To"] = [Address(addr_spec=address) for address in to]
    if cc:
        message["Cc"] = [Address(addr_spec=address) for address in cc]
    message["Subject"] = clean_subject(subject)
    message["Date"] = email.utils.format_datetime(date.astimezone(dt.UTC))
    message["Message-ID"] = refuse_line_breaks(message_id, field="Message-ID")
    if in_reply_to:
        message["In-Reply-To"] = refuse_line_breaks(in_reply_to, field="In-Reply-To")
    if references:
        # One id per folded line: a long thread's References stays within the line limit.
        message["References"] = refuse_line_breaks(" ".join(references), field="References")
    message.set_content(body, cte=_transfer_encoding(body))
    if html_body:
        message.add_alternative(html_body, subtype="html", cte=_transfer_encoding(html_body))
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        # A filename with non-ASCII characters is written as RFC 2231 filename*=utf-8''...
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=refuse_line_breaks(attachment.filename, field="an attachment name"))
    # The SMTP policy writes CRLF line endings, as RFC 5322 requires and the providers expect.
    return message.as_bytes(policy=SMTP)


def _transfer_encoding(text: str) -> str:
    # Quoted-printable keeps non-ASCII text and long lines 7-bit clean for every mail server.
    plain = text.isascii() and all(len(line) <= 76 for line in text.splitlines())
    return "7bit" if plain else "quoted-printable"
