"""Bob files an email nobody matched and says what it is about, in a real Chromium on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from crm.models import Contact, ContactEmail, WorkTicket
from tests.activities.emails import attach, make_email
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEWSLETTER_HTML = """<p>Hi Bob,</p>
<p>The downspout by the <b>back patio</b> is overflowing again. Photo below.</p>
<img src="cid:photo1@mail" alt="Downspout photo">
<img src="https://tracker.example/open.gif" alt="">
<p>Thanks,<br>Marcus</p>"""


def test_file_an_unmatched_email_and_set_its_regarding_by_typing(
    live_server: Any, browser_page: Any, bob: User, contact: Contact, work_ticket: WorkTicket
) -> None:
    marcus = Contact.objects.create(company=bob.company, first_name="Marcus", last_name="Lee")
    ContactEmail.objects.create(company=bob.company, contact=marcus, address="marcus@lee.example")
    email = make_email(bob, subject="Downspout overflowing", html=NEWSLETTER_HTML,
                       from_name="Marcus", from_address="m.lee@gmail.example")
    attach(email, "downspout.png", _png(), content_type="image/png", content_id="<photo1@mail>")
    remote_requests: list[str] = []

    page = browser_page
    page.on("request", lambda request: remote_requests.append(request.url)
            if not request.url.startswith(live_server.url) else None)
    page.goto(live_server.url + "/")
    page.get_by_label("Email address").fill("bob@greenleaf.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    nav_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Unmatched mail")
    assert nav_link.inner_text().split() == ["Unmatched", "mail", "1"]
    nav_link.click()
    page.get_by_role("link", name="Downspout overflowing").click()
    page.get_by_role("heading", name="Downspout overflowing").wait_for()
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    # The inline photo shows from Aspire itself; the tracking pixel never loads.
    assert page.locator(".email-body img[alt='Downspout photo']").evaluate("img => img.naturalWidth") == 1
    assert remote_requests == []

    # File on contact: type, pick, save; no Search button press needed.
    page.get_by_label("Search contacts").fill("marc")
    page.get_by_role("radio", name="Marcus Lee").check()
    page.get_by_role("button", name="File on contact").click()
    page.get_by_text("Filed on Marcus Lee.").wait_for()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Unmatched mail").inner_text() == (
        "Unmatched mail"
    )

    # Regarding: type the work ticket's number.
    page.get_by_label("Search opportunities, properties and work tickets").fill("1041")
    page.get_by_role("radio", name="Work ticket #1041").check()
    page.get_by_role("button", name="Save Regarding").click()
    page.get_by_text("now regarding Work ticket #1041").wait_for()

    page.locator(".email-facts").get_by_role("link", name="Work ticket #1041").click()
    page.get_by_role("heading", name="Work ticket #1041").wait_for()
    assert "Downspout overflowing" in page.locator(".timeline").inner_text()
    page.locator(".timeline").get_by_role("link", name="Downspout overflowing").click()
    page.get_by_role("heading", name="Downspout overflowing").wait_for()
    assert remote_requests == []


def _png() -> bytes:
    """A 1x1 PNG, made here so the test needs no fixture file."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x3a\x7d\x32")) + chunk(
        b"IEND", b""
    )
