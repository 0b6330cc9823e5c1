"""A user's email signature: plain text, or simple HTML cleaned with nh3 when it is saved.

Mail written in Aspire goes out as text and HTML, so the signature is needed as both: plain text
is escaped for the HTML part, and HTML is read as text (inscriptis) for the text part."""

from __future__ import annotations

import html
import re

import nh3
from inscriptis import get_text

# Enough for a name, a title, a phone number and a link; no images (they load from the internet
# when the recipient reads the mail), no styles, no tables.
SIGNATURE_TAGS = frozenset({"a", "b", "strong", "i", "em", "u", "br", "p", "div", "span", "small"})
SIGNATURE_ATTRIBUTES = {"a": {"href"}}
SIGNATURE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)[^>]*>")
# A signature is HTML when it holds a tag a browser knows; "Greenleaf <crews>" is text.
_HTML_TAGS = frozenset(nh3.ALLOWED_TAGS) | {
    "script", "style", "iframe", "object", "embed", "form", "input", "button", "svg", "math", "html", "body",
    "head", "meta", "link", "base", "font", "center", "title", "template", "noscript", "frame", "frameset"}


def is_html(signature: str) -> bool:
    return any(name.lower() in _HTML_TAGS for name in _TAG.findall(signature))


def clean_signature(signature: str) -> str:
    """What is kept of what the user typed: plain text as it is, HTML with only simple tags."""
    signature = signature.replace("\r\n", "\n").strip()
    if not is_html(signature):
        return signature
    return nh3.clean(signature, tags=set(SIGNATURE_TAGS), attributes=SIGNATURE_ATTRIBUTES,
                     url_schemes=set(SIGNATURE_SCHEMES), link_rel="noopener noreferrer").strip()


def signature_text(signature: str) -> str:
    if not is_html(signature):
        return signature
    lines = [line.rstrip() for line in get_text(clean_signature(signature)).splitlines()]
    return "\n".join(lines).strip()


def signature_html(signature: str) -> str:
    if is_html(signature):
        return clean_signature(signature)  # cleaned again: a row written before the rules is not trusted
    return "<br>\n".join(html.escape(line) for line in signature.splitlines())
