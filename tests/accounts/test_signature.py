"""The email signature in Settings: plain text kept as typed, HTML cleaned down to simple markup
when it is saved; only the user's own."""

from __future__ import annotations

import html

from accounts.models import User
from accounts.signature import signature_html, signature_text
from tests.conftest import client_for
from tests.mailboxes import settings_form


def save_signature(user: User, signature: str) -> None:
    response = client_for(user).post("/settings/", {**settings_form(user), "profile-email_signature": signature})
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()


def test_a_plain_text_signature_is_kept_and_shown_as_text_in_html(bob: User, alice: User) -> None:
    save_signature(bob, "Bob Staff\r\nGreenleaf <crews> & more\r\n")
    assert bob.email_signature == "Bob Staff\nGreenleaf <crews> & more"
    assert signature_text(bob.email_signature) == "Bob Staff\nGreenleaf <crews> & more"
    assert signature_html(bob.email_signature) == "Bob Staff<br>\nGreenleaf &lt;crews&gt; &amp; more"
    page = html.unescape(client_for(bob).get("/settings/").content.decode())
    assert "Email signature" in page and "Greenleaf <crews> & more" in page
    alice.refresh_from_db()
    assert alice.email_signature == ""  # one user's signature is theirs only


def test_an_html_signature_keeps_only_simple_markup(bob: User) -> None:
    save_signature(bob, '<p><b>Bob Staff</b> <i>Crew lead</i><br><a href="https://greenleaf.example" '
                        'onclick="x()">greenleaf.example</a> <a href="javascript:alert(1)">tap</a></p>'
                        '<img src="https://tracker.example/pixel.gif"><script>alert(1)</script>'
                        '<span style="font-size:40px">555-0142</span>')
    assert bob.email_signature == (
        '<p><b>Bob Staff</b> <i>Crew lead</i><br><a href="https://greenleaf.example" rel="noopener noreferrer">'
        'greenleaf.example</a> <a rel="noopener noreferrer">tap</a></p><span>555-0142</span>'
    )
    assert signature_text(bob.email_signature).splitlines()[0] == "Bob Staff Crew lead"
    assert "555-0142" in signature_text(bob.email_signature)
