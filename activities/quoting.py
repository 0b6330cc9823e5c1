"""A reply's own words and the history it quotes, told apart by mail-parser-reply (a maintained
parser that knows the quote headers Outlook and Gmail write, in many languages), so the
conversation on an email page shows what each message added and keeps the rest behind a click."""

from __future__ import annotations

from dataclasses import dataclass

from mailparser_reply import EmailReplyParser

# The languages whose "On ... wrote:" / "From: ... Sent:" headers are recognised.
LANGUAGES = ["en", "es", "fr", "de"]


@dataclass(frozen=True)
class SplitReply:
    new: str
    quoted: str


def split_reply(text: str) -> SplitReply:
    """The text a message added, and the quoted history below it (empty when there is none)."""
    if not text.strip():
        return SplitReply("", "")
    parsed = EmailReplyParser(languages=LANGUAGES).read(text)
    replies = parsed.replies
    if not replies:
        return SplitReply(text.strip(), "")
    # Its signature included: it is what the sender wrote. Outlook's separator line above the
    # quoted header is the parser's boundary, not the sender's words.
    new = replies[0].content.strip().rstrip("_").strip()
    if not new:  # a parser that found nothing of its own: show everything as it came
        return SplitReply(text.strip(), "")
    quoted = "\n\n".join(part for reply in replies[1:] if (part := reply.content.strip()))
    return SplitReply(new, quoted)
