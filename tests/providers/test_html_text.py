"""HTML read as text, for mail without a text body and appointment notes written in HTML."""

from __future__ import annotations

import pytest

from providers.html_text import html_to_text


@pytest.mark.parametrize(("html", "text"), [
    ("<p>Gate code 1234</p><p>Park on the street</p>", "Gate code 1234\n\nPark on the street"),
    ("Line<br>two<br><br>four", "Line\ntwo\n\nfour"),
    ("<b>4512</b> &lt; padlock &amp; chain", "4512 < padlock & chain"),
    # A body that opens with a list is not indented as a whole; within the text, a list is.
    ("<ul><li>Mulch</li><li>Edging</li></ul>", "* Mulch\n* Edging"),
    ("<p>Hi</p><ul><li>Mulch</li><li>Edging</li></ul><p>Thanks</p>", "Hi\n\n  * Mulch\n  * Edging\n\nThanks"),
    ("<style>p { margin: 0 }</style><p>Seen</p><script>hidden()</script>", "Seen"),
    ("", ""),
])
def test_html_reads_as_the_text_a_person_sees(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_where_the_text_is_all_that_is_kept_a_link_keeps_its_address() -> None:
    html = ('See <a href="https://plans.example/42">the plan</a>, <a href="https://meet.example/x">'
            'https://meet.example/x</a>, <a href="mailto:dana@homes.example">Dana</a>, <a href="#top">Top</a>.')
    assert html_to_text(html, links=True) == (
        "See the plan <https://plans.example/42>, https://meet.example/x, Dana <dana@homes.example>, Top.")
    assert html_to_text(html) == "See the plan, https://meet.example/x, Dana, Top."
