"""Reading an email in Aspire: safe HTML, images on request, attachments, Regarding, and the
Unmatched list, with every page asking "and can Carol, at another company, see it?"."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from activities.models import Activity
from activities.services import file_on_contact
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from tests.activities.emails import attach, attachment_url, email_url, make_email
from tests.conftest import client_for

HOSTILE_HTML = """<html><head><title>Invoice</title>
<style>body { background: url(https://tracker.example/bg.png) }</style>
<meta http-equiv="refresh" content="0;url=https://phish.example/">
<link rel="stylesheet" href="https://tracker.example/mail.css">
<base href="https://phish.example/"></head>
<body onload="steal()">
<p>Hi Bob, the <b>drainage quote</b> is below.</p>
<script>alert('script tag')</script>
<img src="https://tracker.example/p.gif" onerror="alert('onerror')" alt="pixel">
<a href="javascript:alert('link')" onclick="alert('onclick')">Pay now</a>
<a href="https://greenleaf.example/quote">Read the quote</a>
<div style="background-image: url('https://tracker.example/css.png')">Styled</div>
<iframe src="https://phish.example/frame"></iframe>
<form action="https://phish.example/login" method="post"><input name="password"><button>Sign in</button></form>
<svg><script>alert('svg')</script><image href="https://tracker.example/svg.png"/></svg>
<object data="https://tracker.example/x.swf"></object><embed src="https://tracker.example/y.swf">
<a href="data:text/html,<script>alert('data')</script>">Data link</a>
<img srcset="https://tracker.example/2x.png 2x"><video poster="https://tracker.example/poster.png"></video>
<table background="https://tracker.example/table.png"><tr><td>Total: $1,240</td></tr></table>
</body></html>"""


def body_of(page: str) -> str:
    """The rendered email body, without the page around it."""
    match = re.search(r'<div class="email-body">(.*?)</div>\s*(?:<section class="attachments"|</article>)', page, re.S)
    assert match, page
    return match.group(1)


def test_hostile_html_is_shown_with_none_of_its_active_or_remote_content(bob: User, contact: Contact) -> None:
    email = make_email(bob, html=HOSTILE_HTML, contacts=[contact])
    response = client_for(bob).get(email_url(email))
    assert response.status_code == 200
    body = body_of(response.content.decode())
    # What a reader needs stays.
    assert "drainage quote" in body and "Total: $1,240" in body and "Read the quote" in body
    assert (
        '<a href="https://greenleaf.example/quote" target="_blank" rel="noopener noreferrer">Read the quote</a>' in body
    )
    # None of the rest does.
    for forbidden in (
        "<script", "alert(", "onerror", "onclick", "onload", "javascript:", "tracker.example", "url(", "style=",
        "<style", "<iframe", "<form", "<input", "<svg", "<object", "<embed", "<meta", "<link", "<base", "data:text",
        "phish.example", "srcset", "poster", "background",
    ):  # fmt: skip
        assert forbidden not in body, forbidden


def test_remote_images_load_only_after_show_images(bob: User, contact: Contact) -> None:
    email = make_email(bob, html='<p>Before and after</p><img src="https://photos.example/yard.jpg" alt="yard">',
                       contacts=[contact])
    client = client_for(bob)
    page = client.get(email_url(email))
    assert "photos.example" not in body_of(page.content.decode())
    assert "Show images" in page.content.decode()
    csp = page["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "img-src 'self' data:;" in csp + ";" and "https:" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp

    shown = client.get(email_url(email), {"images": "1"})
    assert '<img src="https://photos.example/yard.jpg" alt="yard">' in body_of(shown.content.decode())
    assert "img-src 'self' data: https:" in shown["Content-Security-Policy"]
    assert "Hide images" in shown.content.decode()
    # Per view, not remembered.
    assert "photos.example" not in body_of(client.get(email_url(email)).content.decode())


def test_no_show_images_offer_when_nothing_is_remote(bob: User, contact: Contact) -> None:
    email = make_email(bob, html="<p>Plain words</p>", contacts=[contact])
    assert "Show images" not in client_for(bob).get(email_url(email)).content.decode()


def test_inline_cid_images_show_from_the_attachment_download(bob: User, contact: Contact) -> None:
    email = make_email(bob, html='<p>Our logo</p><img src="cid:logo.123@greenleaf" alt="Greenleaf">',
                       contacts=[contact])
    logo = attach(email, "logo.png", b"\x89PNG fake", content_type="image/png", content_id="<logo.123@greenleaf>")
    page = client_for(bob).get(email_url(email))
    assert f'<img src="{attachment_url(logo)}" alt="Greenleaf">' in body_of(page.content.decode())
    assert "Show images" not in page.content.decode()
    image = client_for(bob).get(attachment_url(logo))
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content) == b"\x89PNG fake"


def test_plain_text_mail_is_escaped_with_its_line_breaks(bob: User, contact: Contact) -> None:
    email = make_email(bob, text="Hi Bob,\n<b>not bold</b>\nThanks", contacts=[contact])
    body = body_of(client_for(bob).get(email_url(email)).content.decode())
    assert "Hi Bob,<br>&lt;b&gt;not bold&lt;/b&gt;<br>Thanks" in body


def test_the_page_shows_who_when_origin_contacts_regarding_and_problems(
    bob: User, contact: Contact, opportunity: Opportunity
) -> None:
    email = make_email(
        bob,
        subject="Re: Spring mulch [quote #88]",
        html="<p>Yes</p>",
        contacts=[contact],
        to=[["Bob Staff", "bob@greenleaf.example"], ["", "office@greenleaf.example"]],
        cc=[["Ann Lee", "ann@example.com"]],
        occurred_at=dt.datetime(2026, 3, 2, 18, 5, tzinfo=dt.UTC),
        problems="The sender's date was missing; the time it arrived is shown instead.",
    )
    email.regarding_opportunity = opportunity
    email.save()
    page = client_for(bob).get(email_url(email)).content.decode()
    assert "Re: Spring mulch [quote #88]" in page
    assert "Dana Whitfield &lt;dana@example.com&gt;" in page
    assert "Bob Staff &lt;bob@greenleaf.example&gt;</span><span class=\"person\">office@greenleaf.example<" in page
    assert "Ann Lee &lt;ann@example.com&gt;" in page
    assert "Mon, Mar 2, 2026 12:05 PM CST" in page  # Bob's time zone, America/Chicago
    assert "Captured from mailbox" in page
    assert "The sender&#x27;s date was missing" in page
    assert f'href="{contact.get_absolute_url()}"' in page
    assert f'href="{opportunity.get_absolute_url()}"' in page

    sent = make_email(bob, subject="Proposal", origin=Activity.Origin.SENT_FROM_ASPIRE, contacts=[contact])
    assert "Sent from Aspire" in client_for(bob).get(email_url(sent)).content.decode()


def test_timeline_items_link_to_the_email_page(bob: User, contact: Contact) -> None:
    email = make_email(bob, subject="Gate code", contacts=[contact])
    page = client_for(bob).get(contact.get_absolute_url()).content.decode()
    assert f'href="{email_url(email)}">Gate code</a>' in page


# -- attachments ------------------------------------------------------------------------


def test_attachments_are_listed_and_downloaded_under_their_original_names(
    bob: User, contact: Contact, settings: Any
) -> None:
    email = make_email(bob, html="<p>See attached</p>", contacts=[contact])
    quote = attach(email, "Angebot Müller \u2013 März.pdf", b"%PDF-1.7 quote")
    page = client_for(bob).get(email_url(email)).content.decode()
    assert f'href="{attachment_url(quote)}"' in page
    assert "Angebot Müller \u2013 März.pdf" in page and "14\xa0bytes" in page

    response = client_for(bob).get(attachment_url(quote))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''Angebot%20M%C3%BCller%20%E2%80%93%20M%C3%A4rz.pdf"
    )
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"%PDF-1.7 quote"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("invoice.html", "text/html"),
        ("map.svg", "image/svg+xml"),
        ("feed.xml", "application/xml"),
        ("run.js", "text/javascript"),
        ("page.xhtml", "application/xhtml+xml; charset=utf-8"),
        ("mystery.bin", ""),
    ],
)
def test_attachments_a_browser_could_run_are_served_as_plain_bytes(
    bob: User, contact: Contact, filename: str, content_type: str
) -> None:
    email = make_email(bob, contacts=[contact])
    attachment = attach(email, filename, b"<script>alert(1)</script>", content_type=content_type)
    response = client_for(bob).get(attachment_url(attachment))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_attachments_too_large_to_keep_are_listed_without_a_link(bob: User, contact: Contact) -> None:
    email = make_email(bob, contacts=[contact])
    video = attach(email, "site-walkthrough.mov", b"", content_type="video/quicktime", too_large=True,
                   size=80 * 1024 * 1024)
    page = client_for(bob).get(email_url(email)).content.decode()
    assert "site-walkthrough.mov" in page
    assert "80.0\xa0MB · too large to keep (limit 35 MB)" in page
    assert attachment_url(video) not in page
    assert client_for(bob).get(attachment_url(video)).status_code == 404


def test_an_attachment_is_reached_only_through_its_own_email(bob: User, contact: Contact) -> None:
    first = make_email(bob, contacts=[contact])
    second = make_email(bob, contacts=[contact])
    attachment = attach(first, "a.pdf", b"%PDF")
    assert client_for(bob).get(f"/activities/{second.pk}/attachments/{attachment.pk}/").status_code == 404


# -- tenancy -------------------------------------------------------------------------------


def test_another_company_gets_a_404_for_the_email_and_its_attachment(
    bob: User, carol: User, contact: Contact
) -> None:
    email = make_email(bob, subject="Private pricing", html="<p>$9,000</p>", contacts=[contact])
    attachment = attach(email, "pricing.pdf", b"%PDF secret")
    carol_client = client_for(carol)
    for url in (email_url(email), attachment_url(attachment)):
        response = carol_client.get(url)
        assert response.status_code == 404
        assert b"secret" not in b"".join(getattr(response, "streaming_content", [response.content]))
        assert "Private pricing" not in response.content.decode()


def test_another_companys_search_and_writes_never_reach_greenleaf(
    bob: User, carol: User, contact: Contact, opportunity: Opportunity, prop: Property, work_ticket: WorkTicket
) -> None:
    email = make_email(bob, contacts=[contact])
    carol_client = client_for(carol)
    for q in ("mulch", "Whitfield", "Cedar Bend", "1041", "Dana", "dana@example.com"):
        assert carol_client.get("/activities/regarding-search/", {"q": q}).json() == {"results": []}
        assert carol_client.get("/activities/contact-search/", {"q": q}).json() == {"results": []}
    response = carol_client.post(f"/activities/{email.pk}/regarding/", {"regarding": f"property:{prop.pk}"})
    assert response.status_code == 404
    assert carol_client.post(f"/activities/{email.pk}/contacts/", {"contact": str(contact.pk)}).status_code == 404

    # And Carol's own email cannot be pointed at Greenleaf's records.
    summit_email = make_email(carol, contacts=[])
    response = carol_client.post(f"/activities/{summit_email.pk}/regarding/",
                                 {"regarding": f"opportunity:{opportunity.pk}"})
    assert response.status_code == 404
    response = carol_client.post(f"/activities/{summit_email.pk}/contacts/", {"contact": str(contact.pk)})
    assert response.status_code == 404
    summit_email.refresh_from_db()
    assert summit_email.regarding is None and not summit_email.contacts.exists()


def test_file_on_contact_refuses_another_companys_contact(bob: User, carol: User) -> None:
    email = make_email(bob)
    summit_contact = Contact.objects.create(company=carol.company, first_name="Rita")
    with pytest.raises(ValidationError, match="another company"):
        file_on_contact(activity=email, contact=summit_contact)
    assert not email.contacts.exists()


# -- Regarding ---------------------------------------------------------------------------


def test_regarding_search_matches_names_addresses_and_ticket_numbers(
    bob: User, opportunity: Opportunity, prop: Property, work_ticket: WorkTicket
) -> None:
    client = client_for(bob)

    def values(q: str) -> list[str]:
        return [result["value"] for result in client.get("/activities/regarding-search/", {"q": q}).json()["results"]]

    assert values("spring MULCH") == [f"opportunity:{opportunity.pk}"]
    assert f"property:{prop.pk}" in values("whitfield residence")
    assert values("1402 cedar") == [f"property:{prop.pk}"]  # by street address
    assert values("78758") == [f"property:{prop.pk}"]
    assert values("1041") == [f"work-ticket:{work_ticket.pk}"]
    assert values("#1041") == [f"work-ticket:{work_ticket.pk}"]
    assert values("weekly mow") == [f"work-ticket:{work_ticket.pk}"]
    assert values("") == [] and values("zzz") == []
    first = client.get("/activities/regarding-search/", {"q": "1041"}).json()["results"][0]
    assert first == {
        "value": f"work-ticket:{work_ticket.pk}",
        "label": "Work ticket #1041",
        "detail": "Work ticket · Whitfield Residence · Weekly mow",
    }


def test_regarding_search_returns_at_most_20_and_mixes_kinds(bob: User, prop: Property) -> None:
    for n in range(25):
        Opportunity.objects.create(company=bob.company, name=f"Aeration {n}", property=prop)
        Property.objects.create(company=bob.company, name=f"Aeration site {n}", street=f"{n} Elm St", city="Austin")
    results = client_for(bob).get("/activities/regarding-search/", {"q": "aeration"}).json()["results"]
    assert len(results) == 20
    assert {r["value"].split(":")[0] for r in results} == {"opportunity", "property"}


def test_set_and_clear_regarding_through_the_form(
    bob: User, contact: Contact, opportunity: Opportunity, prop: Property, work_ticket: WorkTicket
) -> None:
    email = make_email(bob, subject="Downspout question", contacts=[contact])
    client = client_for(bob)
    url = email_url(email)

    # Without JavaScript: search, pick a radio button, save.
    page = client.get(url, {"regarding_q": "1041"}).content.decode()
    assert f'<input type="radio" name="regarding" value="work-ticket:{work_ticket.pk}" required>' in page
    response = client.post(f"{url}regarding/", {"regarding": f"work-ticket:{work_ticket.pk}"}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "now regarding Work ticket #1041" in response.content.decode()
    assert "Downspout question" in client.get(work_ticket.get_absolute_url()).content.decode()
    assert "Downspout question" in client.get(prop.get_absolute_url()).content.decode()

    client.post(f"{url}regarding/", {"regarding": f"opportunity:{opportunity.pk}"})
    email.refresh_from_db()
    assert email.regarding == opportunity
    assert "Downspout question" in client.get(opportunity.get_absolute_url()).content.decode()
    assert "Downspout question" not in client.get(work_ticket.get_absolute_url()).content.decode()

    client.post(f"{url}regarding/", {"regarding": f"property:{prop.pk}"})
    email.refresh_from_db()
    assert email.regarding == prop

    response = client.post(f"{url}regarding/", {"clear": "1"}, follow=True)
    assert "Regarding cleared." in response.content.decode()
    email.refresh_from_db()
    assert email.regarding is None
    assert "Downspout question" not in client.get(prop.get_absolute_url()).content.decode()

    response = client.post(f"{url}regarding/", {}, follow=True)
    assert "Choose an opportunity, property or work ticket first." in response.content.decode()
    assert client.post(f"{url}regarding/", {"regarding": "contact:whatever"}).status_code == 404


# -- Unmatched mail -----------------------------------------------------------------------


def test_unmatched_list_holds_the_users_own_captured_mail_without_contacts(
    alice: User, bob: User, contact: Contact
) -> None:
    bobs = make_email(bob, subject="Who is this from?")
    make_email(bob, subject="Already filed", contacts=[contact])
    make_email(bob, subject="Sent by Bob", origin=Activity.Origin.SENT_FROM_ASPIRE)
    make_email(alice, subject="Alice's mystery mail")

    page = client_for(bob).get("/activities/unmatched/").content.decode()
    assert "Who is this from?" in page and f'href="{email_url(bobs)}"' in page
    for other in ("Already filed", "Sent by Bob", "Alice&#x27;s mystery mail"):
        assert other not in page
    assert 'Unmatched mail <span class="nav-count" title="1 waiting for a contact">1</span>' in page

    # Per user, the company admin included.
    alices = client_for(alice).get("/activities/unmatched/").content.decode()
    assert "Alice&#x27;s mystery mail" in alices and "Who is this from?" not in alices


def test_unmatched_mail_shows_whom_it_is_from_with_the_address(bob: User) -> None:
    """The address is what the mail is filed by: a display name alone ("Unknown Sender") says nothing."""
    make_email(bob, subject="Quote for lawn care", from_name="Unknown Sender", from_address="newlead@example.net")
    make_email(bob, subject="Bare address", from_name="", from_address="someone@example.org")
    page = client_for(bob).get("/activities/unmatched/").content.decode()
    assert "Unknown Sender &lt;newlead@example.net&gt; · " in page
    assert "someone@example.org · " in page


def test_filing_an_unmatched_email_on_a_contact(bob: User, contact: Contact, greenleaf: Any) -> None:
    other = Contact.objects.create(company=greenleaf, first_name="Marcus", last_name="Lee")
    ContactEmail.objects.create(company=greenleaf, contact=other, address="marcus@lee.example")
    email = make_email(bob, subject="Fence estimate", from_address="m.lee@gmail.example")
    client = client_for(bob)
    url = email_url(email)

    page = client.get(url).content.decode()
    assert "File on contact" in page and "filed on a contact yet" in page
    assert [r["label"] for r in client.get("/activities/contact-search/", {"q": "marcus@lee"}).json()["results"]] == [
        "Marcus Lee"
    ]
    assert [r["label"] for r in client.get("/activities/contact-search/", {"q": "lee marc"}).json()["results"]] == [
        "Marcus Lee"
    ]
    page = client.get(url, {"contact_q": "marcus"}).content.decode()
    assert f'<input type="radio" name="contact" value="{other.pk}" required>' in page
    assert "Dana Whitfield" not in page.split('id="file-on-contact"')[1].split("</section>")[0]

    response = client.post(f"{url}contacts/", {"contact": str(other.pk)}, follow=True)
    assert "Filed on Marcus Lee." in response.content.decode()
    assert "File on contact" not in response.content.decode()
    assert "Fence estimate" not in client.get("/activities/unmatched/").content.decode()
    assert "Fence estimate" in client.get(other.get_absolute_url()).content.decode()
    assert "Fence estimate" not in client.get(contact.get_absolute_url()).content.decode()
