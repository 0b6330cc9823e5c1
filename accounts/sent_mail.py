"""The demo's outbox: the mail Aspire sent (password resets, needs sign-in, Ask to reconnect), read
back from the folder Django's file backend writes to, so a newcomer running ``make demo`` can open
the link a colleague would have received. Only while DEBUG is on and that backend is the one in use."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from django.conf import settings

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
# What the file backend writes after each message.
SEPARATOR = b"\n" + b"-" * 79 + b"\n"
MOST = 50


@dataclass(frozen=True)
class SentMail:
    subject: str
    sender: str
    to: str
    sent_at: dt.datetime | None
    body: str


def shown() -> bool:
    return bool(settings.DEBUG) and settings.EMAIL_BACKEND == FILE_BACKEND


def sent_to(address: str) -> list[SentMail]:
    """The newest mail sent to ``address`` (at most ``MOST``), newest first."""
    folder = Path(settings.EMAIL_FILE_PATH)
    files = sorted(folder.glob("*.log"), key=lambda path: path.stat().st_mtime, reverse=True) if folder.is_dir() else []
    found: list[SentMail] = []
    for path in files:
        for raw in reversed(path.read_bytes().split(SEPARATOR)):
            if not raw.strip():
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            if not isinstance(message, EmailMessage):
                continue
            recipients = [addr.lower() for _, addr in getaddresses(message.get_all("To", []))]
            if address.lower() not in recipients:
                continue
            body = message.get_body(preferencelist=("plain",))
            date = message.get("Date")
            found.append(SentMail(subject=str(message.get("Subject", "")), sender=str(message.get("From", "")),
                                  to=str(message.get("To", "")), sent_at=_sent_at(date) if date else None,
                                  body=body.get_content() if body is not None else ""))
            if len(found) == MOST:
                return found
    return found


def _sent_at(date: str) -> dt.datetime:
    """The Date header as an aware time. Django writes it in UTC as ``-0000`` (RFC 5322 3.3: "no
    information about the local time zone"), which ``parsedate_to_datetime`` reads as a naive time;
    it is UTC, so the page can show it on the reader's clock."""
    sent = parsedate_to_datetime(date)
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=dt.UTC)
