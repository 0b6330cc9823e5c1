"""The reply page says what is quoted below the message in a sentence, with or without a signature."""

from __future__ import annotations

import html

from accounts.models import User
from tests.activities.emails import make_email
from tests.conftest import client_for


def test_the_reply_page_says_what_goes_below_the_message(bob: User) -> None:
    original = make_email(bob, subject="Gutters", text="Can you clean our gutters?")
    client = client_for(bob)
    for mode in ("reply", "reply-all", "forward"):
        page = html.unescape(client.get(f"/mail/reply/{original.pk}/{mode}/").content.decode())
        assert "The original, quoted." in page and "Your signature" not in page
    bob.email_signature = "Bob Staff, Greenleaf"
    bob.save(update_fields=["email_signature"])
    page = html.unescape(client.get(f"/mail/reply/{original.pk}/reply/").content.decode())
    assert "Your signature (Settings), then the original, quoted." in page


def test_the_reply_page_answers_get_head_and_post_only(bob: User) -> None:
    original = make_email(bob, subject="Gutters", text="Can you clean our gutters?")
    client = client_for(bob)
    for mode in ("reply", "reply-all", "forward"):
        url = f"/mail/reply/{original.pk}/{mode}/"
        assert client.get(url).status_code == 200
        assert client.head(url).status_code == 200
        for method in ("PUT", "PATCH", "DELETE"):
            assert client.generic(method, url).status_code == 405, (mode, method)
