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

_CONFIG = ParserConfig(display_images=False, display_links=False)
# libxml2 refuses NUL and most C0 controls in its input; none of them shows in a page anyway.
_UNPARSEABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Readable text from an HTML body: tags dropped, blocks on their own lines, entities decoded."""
    html = _UNPARSEABLE.sub("", html)
    try:
        text = get_text(html, _CONFIG)
    except Exception:  # lxml raises on a few inputs it cannot make a document of
        text = _without_tags(html)
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
