"""HTML to readable text: the one way Aspire reads HTML it keeps as text (mail that has no
plain-text body, telling messages apart, appointment notes an organiser wrote in HTML).

inscriptis renders the HTML as a browser would lay it out in text (blocks on their own lines,
lists, table cells side by side), on lxml's libxml2 parser, which takes any garbage in linear time.
html2text was measured too and left aside: Markdown output, and minutes on some hostile input.
"""

from __future__ import annotations

import re
import textwrap
from html import unescape

from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.tag import CustomHtmlTagHandlerMapping


def _link_start(state: HtmlDocumentState, attrs: dict[str, str]) -> None:
    """A web or mail address to write after the link's words; nothing for any other link."""
    href = str(attrs.get("href") or "").strip()
    if href.lower().startswith("mailto:"):
        href = href[len("mailto:"):]
    elif not href.lower().startswith(("http://", "https://")):
        href = ""
    state.link_target = href


def _link_end(state: HtmlDocumentState) -> None:
    if state.link_target:
        state.tags[-1].write(f" <{state.link_target}>")


_CONFIG = ParserConfig(display_images=False, display_links=False)
# Where the text is all Aspire keeps (an appointment's notes), a link keeps where it goes, as
# "the plan <https://…>" and "Dana <dana@…>"; a link whose words are its address is written once.
_WITH_LINKS = ParserConfig(display_images=False, custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
    start_tag_mapping={"a": _link_start}, end_tag_mapping={"a": _link_end}))
_SAID_TWICE = re.compile(r"(\S+) <\1>")
# libxml2 refuses NUL and most C0 controls in its input; none of them shows in a page anyway.
_UNPARSEABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(html: str, *, links: bool = False) -> str:
    """Readable text from an HTML body: tags dropped, blocks on their own lines, entities decoded;
    with ``links``, each link's address after its words."""
    html = _UNPARSEABLE.sub("", html)
    try:
        text = get_text(html, _WITH_LINKS if links else _CONFIG)
    except Exception:  # lxml raises on a few inputs it cannot make a document of
        text = _without_tags(html)
    if links:
        text = _SAID_TWICE.sub(r"\1", text)
    lines = [line.rstrip() for line in text.replace("\r", "").split("\n")]
    # Indentation common to every line goes (a body that opens with a list is not indented as a
    # whole); what a list or a quote indents within the text stays, its first line included.
    return textwrap.dedent(_BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")).strip("\n")


def _without_tags(html: str) -> str:
    """The text between tags, in one forward scan (a regex would be quadratic on unclosed '<')."""
    pieces = []
    position = 0
    while (opening := html.find("<", position)) >= 0:
        pieces.append(html[position:opening])
        closing = html.find(">", opening)
        if closing < 0:
            break
        position = closing + 1
    else:
        pieces.append(html[position:])
    return unescape(" ".join(pieces))
