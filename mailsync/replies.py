"""Reply, Reply all and Forward on an email in Aspire: who it goes to, its subject, the thread
headers and the quoted original, as mail clients make them. Sending is the send queue's
(``mailsync.outbox.queue_email``); this module only works out what the new message says."""

from __future__ import annotations

import enum
import html
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils import dateformat, timezone

from accounts.models import MailboxConnection
from accounts.signature import signature_html, signature_text
from activities.email_html import clean_email_html
from activities.models import Activity, EmailAttachment
from activities.models import EmailMessage as StoredEmail
from activities.people import person
from providers.html_text import html_to_text


class Mode(enum.StrEnum):
    REPLY = "reply"
    REPLY_ALL = "reply-all"
    FORWARD = "forward"

    @property
    def label(self) -> str:
        return {"reply": "Reply", "reply-all": "Reply all", "forward": "Forward"}[self.value]

    @property
    def needs_words(self) -> bool:
        """Whether the author must write something: a reply with no words is almost always a slip,
        while a forward's content is the original and its attachments."""
        return self is not Mode.FORWARD


# "Re:" and "Fwd:" (with the variants clients write: "RE:", "FW:", "Fwd :") are added once, never stacked.
_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*fwd?\s*:", re.IGNORECASE)
# References grows by one id per message; RFC 5322 3.6.4 lets a long one drop ids from the middle
# (keeping the first, the thread's start). Thirty ids stay well inside header limits.
MAX_REFERENCES = 30


@dataclass(frozen=True)
class Quote:
    """The original below the new text: a line saying whose it is, then its text and HTML."""

    intro: str  # "On Tue, Mar 3, 2026 at 9:14 AM, Dana <dana@example.com> wrote:"
    text: str
    html: str
    forward: bool = False


@dataclass(frozen=True)
class ReplyDraft:
    mode: Mode
    original: Activity
    to: list[str]
    cc: list[str]
    subject: str
    in_reply_to: str
    references: list[str]
    quote: Quote
    # Forward keeps the original's stored attachments (not the ones too large to keep).
    attachments: list[EmailAttachment] = field(default_factory=list)


def reply_subject(subject: str, mode: Mode) -> str:
    subject = " ".join(subject.split())
    if mode is Mode.FORWARD:
        return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}".rstrip()
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def _addresses(entries: Any) -> list[str]:
    found = []
    for entry in entries if isinstance(entries, list) else []:
        address = str(entry[1] if isinstance(entry, list | tuple) and len(entry) == 2 else entry).strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def own_addresses(user: Any) -> set[str]:
    """The author's own addresses, left out of Reply all: their sign-in and their mailbox's."""
    own = {str(user.email).lower()}
    own.update(address.lower() for address in
               MailboxConnection.objects.filter(user=user).values_list("mailbox_address", flat=True))
    return own


def reply_recipients(email: StoredEmail, mode: Mode, own: set[str]) -> tuple[list[str], list[str]]:
    """To and Cc as mail clients fill them: Reply goes to the sender (or where their Reply-To asks),
    Reply all adds the other recipients, never the author's own addresses; Forward to nobody yet.
    A reply to one's own message goes to its recipients again."""
    if mode is Mode.FORWARD:
        return [], []
    sender = _addresses([["", email.from_address]])
    original_to, original_cc = _addresses(email.to), _addresses(email.cc)
    if sender and sender[0] in own:
        to = [a for a in original_to if a not in own] or sender
    else:
        to = _addresses(email.reply_to) or sender
    cc: list[str] = []
    if mode is Mode.REPLY_ALL:
        to = to + [a for a in original_to if a not in own and a not in to]
        cc = [a for a in original_cc if a not in own and a not in to]
    return to, cc


def thread_headers(email: StoredEmail) -> tuple[str, list[str]]:
    """In-Reply-To and References of an answer to this email (RFC 5322 3.6.4): the original's
    Message-ID, and its References (or else its In-Reply-To) followed by that id."""
    message_id = _bracketed(email.message_id)
    if not message_id:
        return "", []
    above = [_bracketed(one) for one in (email.references.split() or email.in_reply_to.split())]
    references = [*dict.fromkeys([*above, message_id])]
    if len(references) > MAX_REFERENCES:
        references = [references[0], *references[-(MAX_REFERENCES - 1):]]
    return message_id, references


def _bracketed(message_id: str) -> str:
    # Captured ids are stored bare, ours as sent ("<...>"); a header needs the brackets.
    message_id = message_id.strip()
    return message_id if not message_id or message_id.startswith("<") else f"<{message_id}>"


def quote_of(activity: Activity, email: StoredEmail | None, mode: Mode, *, time_zone: str) -> Quote:
    sender = person(email.from_name, email.from_address) if email else str(activity.owner or "")
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    when = dateformat.format(timezone.localtime(activity.occurred_at, zone), "D, M j, Y \\a\\t g:i A")
    text = (email.text_body or html_to_text(email.html_body)) if email else activity.body
    if email and email.html_body:
        quoted_html = clean_email_html(email.html_body, inline_images={}, allow_remote_images=False).html
    else:
        quoted_html = _text_as_html(text)
    if mode is Mode.FORWARD:
        recipients = ", ".join(_addresses(email.to)) if email else ""
        intro = "\n".join([
            "---------- Forwarded message ---------", f"From: {sender}", f"Date: {when}",
            f"Subject: {activity.subject}", *([f"To: {recipients}"] if recipients else []),
        ])
        return Quote(intro=intro, text=text, html=quoted_html, forward=True)
    return Quote(intro=f"On {when}, {sender} wrote:", text=text, html=quoted_html)


def draft_reply(*, author: Any, original: Activity, mode: Mode) -> ReplyDraft:
    """What Reply, Reply all or Forward on ``original`` starts with. The caller has checked that
    the author may read it (``activities.selectors.email_for_user``)."""
    try:
        email: StoredEmail | None = original.email
    except ObjectDoesNotExist:
        email = None
    to, cc = reply_recipients(email, mode, own_addresses(author)) if email else ([], [])
    in_reply_to, references = thread_headers(email) if email else ("", [])
    attachments = []
    if mode is Mode.FORWARD and email is not None:
        attachments = [a for a in email.attachments.all() if a.file and not a.too_large]
    return ReplyDraft(
        mode=mode, original=original, to=to, cc=cc, subject=reply_subject(original.subject, mode),
        in_reply_to=in_reply_to, references=references,
        quote=quote_of(original, email, mode, time_zone=author.time_zone or "UTC"), attachments=attachments,
    )


def message_bodies(*, text: str, signature: str, quote: Quote | None = None) -> tuple[str, str]:
    """The text and HTML parts of mail written in Aspire: what the author typed, their signature
    ("-- " on a line of its own before it, RFC 3676 4.3), and a reply's or forward's original below
    (as "> " lines in the text; in the HTML, cleaned with nh3 inside a blockquote)."""
    text = text.replace("\r\n", "\n").rstrip()
    text_parts = [text]
    # A forward may carry no words of the author's own: then it starts with what comes after them.
    html_parts = [f"<div>{_text_as_html(text)}</div>"] if text else []
    if signature.strip():
        text_parts.append("-- \n" + signature_text(signature))
        html_parts.append(f'<div class="signature">-- <br>\n{signature_html(signature)}</div>')
    if quote is not None:
        if quote.forward:
            text_parts.append(f"{quote.intro}\n\n{quote.text}".rstrip())
        else:
            quoted = "\n".join(f"> {line}".rstrip() for line in quote.text.splitlines())
            text_parts.append(f"{quote.intro}\n{quoted}".rstrip())
        intro_html = _text_as_html(quote.intro)
        html_parts.append(f'<div>{intro_html}</div>\n<blockquote type="cite">{quote.html}</blockquote>')
    plain = "\n\n".join(part for part in text_parts if part) + "\n"
    markup = "\n".join(html_parts)
    return plain, f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{markup}\n</body></html>\n'


def _text_as_html(text: str) -> str:
    return "<br>\n".join(html.escape(line) for line in text.splitlines())
