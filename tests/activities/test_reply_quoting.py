"""Quoted history told apart from a reply's own words, on real-shaped replies from Outlook
(desktop, web, mobile), Gmail and Apple Mail (tests/activities/replies)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from activities.quoting import split_reply

REPLIES = Path(__file__).parent / "replies"
EXPECTED = json.loads((REPLIES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_replys_own_words_and_its_quoted_history(name: str) -> None:
    message = email.message_from_bytes((REPLIES / name).read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    split = split_reply(body.get_content())
    assert split.new == EXPECTED[name]
    assert "Can we come Tuesday" in split.quoted
    assert "Can we come Tuesday" not in split.new


def test_a_message_that_quotes_nothing_is_all_its_own() -> None:
    split = split_reply("Please send the invoice.\n\nDana")
    assert (split.new, split.quoted) == ("Please send the invoice.\n\nDana", "")
