"""The raw-message parser: what the capture pipeline gets from real, and really broken, mail."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import tracemalloc
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from mailsync.mime import Address, ParsedEmail, UnparseableMessage, dedupe_key_for_message_id, parse_message

SAME_EMAIL = Path(__file__).parent / "mail" / "same-email"
PARSER_MAIL = Path(__file__).parent / "mail" / "parser"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def parse(raw: bytes, spool: Path, **options: int) -> ParsedEmail:
    return parse_message(raw, spool_dir=spool, **options)


def fixture(name: str, **fields: str) -> bytes:
    """A hand-written message from tests/mailsync/mail/parser; {{field}} marks what a test fills in."""
    raw = (PARSER_MAIL / name).read_bytes()
    for field, value in fields.items():
        raw = raw.replace(b"{{" + field.encode() + b"}}", value.encode("utf-8"))
    return raw


def basic_message(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jane Doe <Jane.Doe@Example.COM>"
    message["To"] = "Bob Smith <bob@greenleaf.example>, crew@greenleaf.example"
    message["Subject"] = "Spring cleanup at 12 Elm St"
    message["Date"] = "Tue, 04 Mar 2025 09:30:00 -0600"
    message["Message-ID"] = "<CAF1234.5678@mail.example.com>"
    for name, value in headers.items():
        del message[name]
        message[name] = value
    message.set_content("Hi Bob,\n\nCan the crew come on Friday?\n\nJane\n")
    return message


# --- Headers -----------------------------------------------------------------------------------


def test_headers_addresses_and_threading(spool: Path) -> None:
    message = basic_message()
    message["Cc"] = '"Smith, Ann" <ANN@Greenleaf.example>'
    message["Bcc"] = "boss@greenleaf.example"
    message["Reply-To"] = "Jane at home <jane@home.example>"
    message["In-Reply-To"] = "<prev@mail.example.com>"
    message["References"] = "<root@mail.example.com> <prev@mail.example.com>"

    parsed = parse(message.as_bytes(), spool)

    assert parsed.subject == "Spring cleanup at 12 Elm St"
    assert parsed.from_ == Address(name="Jane Doe", email="jane.doe@example.com")
    assert parsed.to == (Address("Bob Smith", "bob@greenleaf.example"), Address("", "crew@greenleaf.example"))
    assert parsed.cc == (Address("Smith, Ann", "ann@greenleaf.example"),)
    assert parsed.bcc == (Address("", "boss@greenleaf.example"),)
    assert parsed.reply_to == (Address("Jane at home", "jane@home.example"),)
    assert parsed.date == dt.datetime(2025, 3, 4, 15, 30, tzinfo=dt.UTC)
    assert parsed.date.utcoffset() is not None
    assert parsed.message_id == "CAF1234.5678@mail.example.com"
    assert parsed.in_reply_to == "prev@mail.example.com"
    assert parsed.references == ("root@mail.example.com", "prev@mail.example.com")
    assert parsed.text_body == "Hi Bob,\n\nCan the crew come on Friday?\n\nJane\n"
    assert parsed.html_body == ""
    assert parsed.attachments == ()
    assert parsed.problems == ()
    assert parsed.size == len(message.as_bytes())
    assert parsed.participants() == {
        "jane.doe@example.com", "bob@greenleaf.example", "crew@greenleaf.example",
        "ann@greenleaf.example", "boss@greenleaf.example", "jane@home.example",
    }


def test_encoded_word_subject_and_folded_headers(spool: Path) -> None:
    raw = fixture("encoded-word-subject-and-folded-headers.eml")

    parsed = parse(raw, spool)

    assert parsed.subject == "Grüße aus München und mehr €"
    assert parsed.from_ == Address("Jürgen Müller", "jm@example.de")
    assert [address.email for address in parsed.to] == ["a@example.com", "b@example.com", "f@example.fr"]
    assert parsed.to[2].name == "François"


def test_header_injection_through_encoded_words_is_flattened(spool: Path) -> None:
    raw = fixture("header-injection-through-encoded-words-is-flattened.eml")

    parsed = parse(raw, spool)

    values = [parsed.subject, parsed.from_.name if parsed.from_ else "", parsed.message_id,
              parsed.attachments[0].filename]
    for value in values:
        assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert parsed.subject == "Invoice X-Injected: yes"
    assert parsed.from_ == Address("Mallory Bcc: victim@example.com", "mallory@example.com")
    assert parsed.bcc == ()
    assert "victim@example.com" not in parsed.participants()
    assert parsed.attachments[0].filename == "evil .pdf"


def test_raw_non_ascii_headers(spool: Path) -> None:
    utf8 = "From: Jürgen <jm@example.de>\nSubject: Grüße\nTo: b@example.com\nMessage-ID: <a@b>\n\nx\n".encode()
    parsed = parse(utf8.replace(b"\n", b"\r\n"), spool)
    assert parsed.subject == "Grüße"
    assert parsed.from_ == Address("Jürgen", "jm@example.de")
    assert not any("Subject" in problem for problem in parsed.problems)

    latin = "Subject: Café “special”\nFrom: a@example.com\nMessage-ID: <a@b>\n\nx\n".encode("cp1252")
    parsed = parse(latin, spool)
    assert parsed.subject == "Café “special”"
    assert any("Subject header has unencoded non-ASCII text" in problem for problem in parsed.problems)


def test_a_thousand_recipients_are_all_read(spool: Path) -> None:
    message = basic_message()
    del message["To"]
    message["To"] = ", ".join(f'"Customer {n}, Jr." <customer{n}@Example.com>' for n in range(600))
    message["Cc"] = ", ".join(f"crew{n}@greenleaf.example" for n in range(400))
    raw = message.as_bytes()

    parsed = parse(raw, spool)  # how fast: make bench-ingest

    assert len(parsed.to) == 600 and len(parsed.cc) == 400
    assert parsed.to[599] == Address("Customer 599, Jr.", "customer599@example.com")
    assert len(parsed.participants()) == 1001


def test_addresses_without_a_domain_are_kept_as_written(spool: Path) -> None:
    raw = fixture("addresses-without-a-domain-are-kept-as-written.eml")
    parsed = parse(raw, spool)
    assert parsed.to == (Address("John Smith", ""), Address("", "good@example.com"), Address("Ann", "ann"),
                         Address("undisclosed-recipients:;", ""))
    assert "3 entries in the To header have no email domain; shown as written." in parsed.problems
    assert "1 address in the To header could not be read." in parsed.problems
    # Only real addresses can belong to a contact.
    assert parsed.participants() == {"a@example.com", "good@example.com"}


# --- Dates and ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_header", "expected", "note"),
    [
        ("Tue, 4 Mar 2025 09:30:00 +0000", dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC), None),
        ("Tue, 4 Mar 2025 09:30:00 -0000", dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC), None),
        ("4 Mar 2025 09:30:00 EST", dt.datetime(2025, 3, 4, 14, 30, tzinfo=dt.UTC), None),
        ("Tue, 4 Mar 2025 09:30:00", dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC), "no time zone"),
        ("2025-03-04T09:30:00+02:00", dt.datetime(2025, 3, 4, 7, 30, tzinfo=dt.UTC), None),
        ("someday soon", None, "Date header could not be read"),
        ("Tue, 31 Feb 2025 09:30:00 +0000", None, "Date header could not be read"),
        ("Tue, 4 Mar 2025 09:30:00 +9999", None, "Date header could not be read"),
    ],
)
def test_dates(spool: Path, date_header: str, expected: dt.datetime | None, note: str | None) -> None:
    parsed = parse(fixture("date-template.eml", date=date_header), spool)
    assert parsed.date == expected
    if parsed.date is not None:
        assert parsed.date.tzinfo is not None
    assert any(note in problem for problem in parsed.problems) if note else parsed.problems == ()


def test_missing_date_and_message_id(spool: Path) -> None:
    parsed = parse(fixture("missing-date-and-message-id.eml"), spool)
    assert parsed.date is None
    assert parsed.message_id == ""
    assert "The message has no Date header." in parsed.problems
    assert any("no Message-ID" in problem for problem in parsed.problems)
    assert parsed.dedupe_key().startswith("digest:")


def test_dedupe_key_is_the_same_for_the_same_email(spool: Path) -> None:
    with_id = basic_message().as_bytes()
    assert parse(with_id, spool).dedupe_key() == parse(with_id, spool).dedupe_key()
    assert parse(with_id, spool).dedupe_key() == "mid:caf1234.5678@mail.example.com"
    # What mail sent from Aspire is recorded under, from the Message-ID it was sent with.
    assert dedupe_key_for_message_id("<CAF1234.5678@mail.example.com>") == parse(with_id, spool).dedupe_key()

    message = basic_message()
    del message["Message-ID"]
    without_id = message.as_bytes()
    key = parse(without_id, spool).dedupe_key()
    assert key == parse(without_id, spool).dedupe_key()
    assert key.startswith("digest:")

    # The copy in another mailbox went through other software: LF line ends, the date written in
    # another zone, the body re-encoded as base64 and re-wrapped.
    other_copy = basic_message(Date="Tue, 04 Mar 2025 15:30:00 +0000")
    del other_copy["Message-ID"]
    other_copy.set_content("Hi Bob,\r\n\r\nCan the crew come on\r\nFriday?\r\n\r\nJane", cte="base64")
    assert parse(other_copy.as_bytes().replace(b"\r\n", b"\n"), spool).dedupe_key() == key

    different = basic_message()
    del different["Message-ID"]
    different.set_content("Hi Bob, can the crew come on Saturday instead?")
    assert parse(different.as_bytes(), spool).dedupe_key() != key


def test_copies_of_one_email_from_two_providers_meet(spool: Path) -> None:
    """Gmail serves the message as received, its delivery headers on top; Graph serves MIME that
    Exchange built afresh (new boundaries and encodings, its own headers and text rendering)."""
    gmail = parse((SAME_EMAIL / "site-report-as-gmail-serves-it.eml").read_bytes(), spool)
    graph = parse((SAME_EMAIL / "site-report-as-graph-serves-it.eml").read_bytes(), spool)
    assert gmail.message_id == graph.message_id == ""
    assert gmail.subject == graph.subject == "Wall finished \u2013 photos"
    assert gmail.dedupe_key() == graph.dedupe_key()


@pytest.mark.parametrize("other", ["notice-other-attachment.eml", "notice-other-html.eml", "notice-other-to.eml"])
def test_distinct_mail_without_a_message_id_never_meets(spool: Path, other: str) -> None:
    notice = parse((SAME_EMAIL / "notice.eml").read_bytes(), spool)
    different = parse((SAME_EMAIL / other).read_bytes(), spool)
    assert (notice.subject, notice.from_, notice.date, notice.text_body) == (
        different.subject, different.from_, different.date, different.text_body)
    assert notice.dedupe_key() != different.dedupe_key()


def test_message_id_is_normalised(spool: Path) -> None:
    parsed = parse(fixture("message-id-is-normalised-1.eml"), spool)
    assert parsed.message_id == "ABC@Example.COM"
    assert parsed.dedupe_key() == "mid:abc@example.com"
    parsed = parse(fixture("message-id-is-normalised-2.eml"), spool)
    assert parsed.message_id == "no-brackets@example.com"


# --- Bodies ------------------------------------------------------------------------------------


def nested_message() -> EmailMessage:
    """mixed > (alternative > (plain, related > (html, image)), pdf)"""
    message = basic_message()
    message.add_alternative(
        '<html><body><p>Hi <b>Bob</b>,</p><img src="cid:logo.123@greenleaf"></body></html>', subtype="html"
    )
    html_part = message.get_payload()[1]
    html_part.add_related(PNG, "image", "png", cid="<logo.123@greenleaf>", filename="logo.png",
                          disposition="inline")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="Estimate 42.pdf")
    return message


def test_nested_multipart_bodies_and_attachments(spool: Path) -> None:
    message = nested_message()
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "application/pdf",
    ]

    parsed = parse(message.as_bytes(), spool)

    assert parsed.text_body.startswith("Hi Bob,\n\nCan the crew")
    assert parsed.html_body.startswith('<html><body><p>Hi <b>Bob</b>,</p><img src="cid:logo.123@greenleaf">')
    logo, estimate = parsed.attachments
    assert (logo.filename, logo.content_type, logo.content_id, logo.inline) == (
        "logo.png", "image/png", "logo.123@greenleaf", True)
    assert (estimate.filename, estimate.content_type, estimate.content_id, estimate.inline) == (
        "Estimate 42.pdf", "application/pdf", "", False)
    for attachment, content in ((logo, PNG), (estimate, PDF)):
        assert attachment.path.parent == spool
        assert attachment.path.read_bytes() == content
        assert attachment.size == len(content)
        assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert sorted(spool.iterdir()) == sorted([logo.path, estimate.path])
    assert parsed.problems == ()


def test_content_id_not_shown_in_the_html_is_not_inline(spool: Path) -> None:
    message = basic_message()
    message.add_alternative("<p>No pictures here</p>", subtype="html")
    message.add_attachment(PNG, "image", "png", cid="<photo@x>", filename="photo.png", disposition="inline")
    photo = parse(message.as_bytes(), spool).attachments[0]
    assert photo.content_id == "photo@x"
    assert photo.inline is False


def test_related_image_without_disposition_is_inline(spool: Path) -> None:
    raw = fixture("related-image-without-disposition-is-inline.eml")
    (chart,) = parse(raw, spool).attachments
    assert (chart.filename, chart.content_id, chart.inline) == ("attachment-1.gif", "chart@x", True)
    assert chart.path.read_bytes() == base64.b64decode("R0lGODlhAQABAAAAACw=")


def test_html_only_message_gets_a_text_body(spool: Path) -> None:
    message = basic_message()
    message.set_content(
        "<html><head><title>T</title><style>p { color: red }</style></head><body>"
        "<p>Hello&nbsp;Bob,</p>\n<p>Prices:\n  <b>$40</b> &amp; up</p>"
        "<ul><li>Mulch</li><li>Edging</li></ul><script>alert(1)</script>"
        "<table><tr><td>Line 1</td><td>Line 2</td></tr></table>Thanks<br>Jane</body></html>",
        subtype="html",
    )

    parsed = parse(message.as_bytes(), spool)

    assert parsed.html_body.startswith("<html><head><title>T</title><style>")
    assert parsed.text_body == "Hello Bob,\n\nPrices: $40 & up\n\n  * Mulch\n  * Edging\nLine 1  Line 2\n\nThanks\nJane"


@pytest.mark.parametrize(
    "hostile_html",
    ["<a" * 100_000, "</" * 100_000, "<![" * 100_000, "<!--" * 100_000, "<script>" + "x<" * 100_000, "< " * 100_000],
)
@pytest.mark.timeout(30)  # a parser that goes quadratic on these never finishes
def test_hostile_html_is_read(spool: Path, hostile_html: str) -> None:
    message = basic_message()
    message.set_content("<p>Hello</p>" + hostile_html, subtype="html")
    parsed = parse(message.as_bytes(), spool)
    assert parsed.text_body.startswith("Hello")


def test_first_body_that_is_not_an_attachment_wins(spool: Path) -> None:
    raw = fixture("first-body-that-is-not-an-attachment-wins.eml")

    parsed = parse(raw, spool)

    assert parsed.text_body == "the real body"
    assert parsed.html_body == ""
    names = [attachment.filename for attachment in parsed.attachments]
    assert names == ["notes.txt", "attachment-2.txt", "page.html"]
    assert parsed.attachments[1].path.read_bytes() == b"a second text part"


def test_alternative_bodies_are_preferred(spool: Path) -> None:
    raw = fixture("alternative-bodies-are-preferred.eml")
    parsed = parse(raw, spool)
    assert (parsed.text_body, parsed.html_body) == ("plain version", "<p>html version</p>")
    assert [attachment.filename for attachment in parsed.attachments] == ["attachment-1.html"]


# --- Character sets ----------------------------------------------------------------------------


def text_message(charset: str, body: bytes, transfer_encoding: str = "8bit") -> bytes:
    return fixture("charset-template.eml", charset=charset, transfer_encoding=transfer_encoding) + body


@pytest.mark.parametrize(
    ("charset", "body", "expected", "note"),
    [
        ("utf-8", "Grüße €".encode(), "Grüße €", None),
        ("utf8", "Grüße €".encode(), "Grüße €", None),
        ('"UTF-8"', "Grüße €".encode(), "Grüße €", None),
        ("iso-8859-15", "Grüße €".encode("iso-8859-15"), "Grüße €", None),
        ("windows-1252", "“Grüße” €".encode("cp1252"), "“Grüße” €", None),
        ("iso-8859-1", "Grüße".encode("latin-1"), "Grüße", None),
        ("iso-8859-1", "“Grüße” \u2013 €5".encode("cp1252"), "“Grüße” \u2013 €5", "uses Windows-1252 characters"),
        ("iso-8859-1", "“Grüße”".encode(), "“Grüße”", "labelled iso-8859-1 but was read as UTF-8"),
        ("us-ascii", "Grüße".encode(), "Grüße", "labelled us-ascii but was read as UTF-8"),
        ("x-unknown", "Grüße".encode(), "Grüße", "unknown character set (x-unknown); it was read as UTF-8"),
        ("x-unknown", "Grüße €".encode("cp1252"), "Grüße €", "it was read as Windows-1252"),
        ("base64", "Grüße".encode(), "Grüße", "unknown character set (base64)"),
        ("utf-8", b"ok \xff\xfe ok", "ok \ufffd\ufffd ok", "not valid utf-8; they were replaced"),
        ("shift_jis", "日本語".encode(), "日本語", "labelled shift_jis but was read as UTF-8"),
        ("ks_c_5601-1987", "안녕하세요".encode("cp949"), "안녕하세요", None),
    ],
)
def test_charsets(spool: Path, charset: str, body: bytes, expected: str, note: str | None) -> None:
    parsed = parse(text_message(charset, body), spool)
    assert parsed.text_body == expected
    if note:
        assert any(note in problem for problem in parsed.problems), parsed.problems
    else:
        assert parsed.problems == ()


@pytest.mark.parametrize("charset", ["idna", "punycode", "undefined", "zlib", "rot13", "utf-7", "hex", "a\\x00b"])
def test_exotic_charset_labels_never_break_parsing(spool: Path, charset: str) -> None:
    parsed = parse(text_message(charset, b"caf\xc3\xa9 \xff+ABC- " + b"x" * 100), spool)
    assert parsed.text_body.startswith("caf")


def test_text_without_charset_label(spool: Path) -> None:
    raw = fixture("text-without-charset-label.eml")
    parsed = parse(raw, spool)
    assert parsed.text_body == "Grüße"
    assert any("labelled US-ASCII but was read as UTF-8" in problem for problem in parsed.problems)


def test_nul_characters_and_line_ends_in_bodies(spool: Path) -> None:
    parsed = parse(text_message("utf-8", b"a\x00b\r\nc\rd\ne"), spool)
    assert parsed.text_body == "ab\nc\nd\ne"


# --- Malformed MIME ----------------------------------------------------------------------------


def test_multipart_without_boundary_parameter(spool: Path) -> None:
    raw = fixture("multipart-without-boundary-parameter.eml")
    parsed = parse(raw, spool)
    assert parsed.text_body == "the body"
    assert [attachment.filename for attachment in parsed.attachments] == ["a.pdf"]
    assert parsed.attachments[0].path.read_bytes() == PDF
    assert any("found by their separator lines" in problem for problem in parsed.problems)


def test_multipart_with_wrong_boundary_and_no_parts(spool: Path) -> None:
    raw = fixture("multipart-with-wrong-boundary-and-no-parts-1.eml")
    parsed = parse(raw, spool)
    assert parsed.html_body == "<p>html</p>"
    assert parsed.text_body == "html"

    raw = fixture("multipart-with-wrong-boundary-and-no-parts-2.eml")
    parsed = parse(raw, spool)
    assert parsed.text_body == "just some text\n"
    assert any("read as plain text" in problem for problem in parsed.problems)


def test_missing_closing_boundary(spool: Path) -> None:
    raw = fixture("missing-closing-boundary.eml")
    parsed = parse(raw, spool)
    assert parsed.text_body == "body"
    assert parsed.attachments[0].path.read_bytes() == b"some data"
    assert any("cut short" in problem for problem in parsed.problems)


def test_bogus_transfer_encoding_keeps_the_content(spool: Path) -> None:
    parsed = parse(text_message("utf-8", b"plain words", transfer_encoding="x-made-up"), spool)
    assert parsed.text_body == "plain words"
    assert any("unknown transfer encoding (x-made-up)" in problem for problem in parsed.problems)


@pytest.mark.parametrize(
    ("spelling", "encoded"),
    [("Base-64", base64.b64encode("Grüße".encode()).decode()), ("quoted printable", "Gr=C3=BC=C3=9Fe")],
)
def test_misspelt_transfer_encoding_is_read(spool: Path, spelling: str, encoded: str) -> None:
    parsed = parse(text_message("utf-8", encoded.encode(), transfer_encoding=spelling), spool)
    assert parsed.text_body == "Grüße"
    assert any(f"declares the transfer encoding '{spelling.lower()}'" in problem for problem in parsed.problems)


def test_damaged_base64_keeps_what_can_be_read(spool: Path) -> None:
    raw = fixture("damaged-base64-keeps-what-can-be-read.eml")
    parsed = parse(raw, spool)
    content = parsed.attachments[0].path.read_bytes()
    assert PDF.startswith(content) and len(content) >= len(PDF) - 3
    assert any("invalid base64" in problem for problem in parsed.problems)


def test_broken_header_lines_do_not_hide_the_other_headers(spool: Path) -> None:
    raw = fixture("broken-header-lines-do-not-hide-the-other-headers.eml")
    parsed = parse(raw, spool)
    assert [address.email for address in parsed.to] == ["b@example.com", "c@example.com"]
    assert [address.email for address in parsed.cc] == ["d@example.com"]
    assert parsed.subject.startswith("Quote")
    assert parsed.text_body == "body\n"
    assert any("continuation" in problem for problem in parsed.problems)


def test_headers_only_and_headerless_input(spool: Path) -> None:
    parsed = parse(b"From: a@example.com\r\nSubject: only headers", spool)
    assert (parsed.subject, parsed.text_body) == ("only headers", "")
    parsed = parse(b"just a line of text, no headers\r\n", spool)
    assert parsed.text_body == "just a line of text, no headers\n"
    assert parsed.from_ is None
    assert "The message has no readable sender (From)." in parsed.problems


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n \t", b"\r\n"])
def test_empty_input_is_unparseable(spool: Path, raw: bytes) -> None:
    with pytest.raises(UnparseableMessage):
        parse(raw, spool)


def test_absurdly_deep_nesting_is_refused_cleanly(spool: Path) -> None:
    with pytest.raises(UnparseableMessage, match="nested"):
        parse((Path(__file__).parent / "mail" / "nesting-bomb-1000-levels.eml").read_bytes(), spool)
    assert list(spool.iterdir()) == []


def test_fuzzed_structures_never_raise(spool: Path) -> None:
    """Cut a real message at every point and flip bytes: each variant degrades, none crashes."""
    raw = nested_message().as_bytes()
    variants = [raw[:cut] for cut in range(40, len(raw), 97)]
    variants += [raw[:cut] + b"\xff\x00=?\r\n--" + raw[cut:] for cut in range(0, len(raw), 131)]
    for variant in variants:
        parsed = parse(variant, spool)
        assert isinstance(parsed.problems, tuple)


# --- Attachments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ("attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf", "Rechnung März.pdf"),
        ("attachment; filename*0*=UTF-8''Rechnung%20; filename*1=\"M%C3%A4rz.pdf\"", "Rechnung M%C3%A4rz.pdf"),
        ("attachment; filename*0*=UTF-8''Rechnung%20; filename*1*=M%C3%A4rz.pdf", "Rechnung März.pdf"),
        ('attachment; filename="=?utf-8?B?UmVjaG51bmcgTcOkcnoucGRm?="', "Rechnung März.pdf"),
        ("attachment; filename==?utf-8?B?UmVjaG51bmcgTcOkcnoucGRm?=", "Rechnung März.pdf"),
        ("attachment; filename=site plan v2.pdf", "site plan v2.pdf"),
        ('attachment; filename="../../etc/passwd.pdf"', "passwd.pdf"),
        ('attachment; filename="C:\\\\Users\\\\bob\\\\plan.pdf"', "plan.pdf"),
        ('attachment; filename="tab\there\x7f.pdf"', "tab here.pdf"),
        ('attachment; filename="invoice\u202efdp.exe"', "invoicefdp.exe"),
        ('attachment; filename=".."', "attachment-1.pdf"),
        ("attachment", "attachment-1.pdf"),
        ("attachment; filename=" + "x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_attachment_filenames(spool: Path, disposition: str, expected: str) -> None:
    raw = fixture("attachment-filename-template.eml", disposition=disposition)
    (attachment,) = parse(raw, spool).attachments
    assert attachment.filename == expected
    assert len(attachment.filename) <= 200


def test_filename_from_content_type_name_and_raw_8bit(spool: Path) -> None:
    raw = fixture("filename-from-content-type-name-and-raw-8bit.eml")
    photo, letter = parse(raw, spool).attachments
    assert (photo.filename, photo.content_type) == ("photo 1.jpg", "image/jpeg")
    assert letter.filename == "Grüße.pdf"


def test_attached_message_is_kept_as_eml(spool: Path) -> None:
    inner = nested_message()
    del inner["Subject"]
    inner["Subject"] = "Re: Estimate / revised"
    outer = basic_message(Subject="Fwd: Estimate")
    outer.add_attachment(inner)

    parsed = parse(outer.as_bytes(), spool)

    (forwarded,) = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Re: Estimate - revised.eml"
    saved = BytesParser(policy=default_policy).parsebytes(forwarded.path.read_bytes())
    assert saved["Subject"] == "Re: Estimate / revised"
    assert saved["Message-ID"] == inner["Message-ID"]
    assert [part.get_content() for part in saved.iter_attachments()] == [PDF]
    assert forwarded.sha256 == hashlib.sha256(forwarded.path.read_bytes()).hexdigest()
    # The parts inside the forwarded message belong to it, not to the outer message.
    assert parsed.text_body.startswith("Hi Bob")


def test_tnef_winmail_dat_is_an_attachment(spool: Path) -> None:
    message = basic_message()
    tnef = b"\x78\x9f\x3e\x22" + os.urandom(200)
    message.add_attachment(tnef, "application", "ms-tnef", filename="winmail.dat")
    (winmail,) = parse(message.as_bytes(), spool).attachments
    assert (winmail.filename, winmail.content_type) == ("winmail.dat", "application/ms-tnef")
    assert winmail.path.read_bytes() == tnef


def test_calendar_invite_is_an_attachment(spool: Path) -> None:
    invite = (
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Site visit\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    message = basic_message()
    message.add_alternative("<p>Site visit</p>", subtype="html")
    message.add_alternative(invite, subtype="calendar", params={"method": "REQUEST"})

    parsed = parse(message.as_bytes(), spool)

    assert parsed.text_body.startswith("Hi Bob")
    assert parsed.html_body == "<p>Site visit</p>\n"
    (calendar,) = parsed.attachments
    assert (calendar.filename, calendar.content_type) == ("attachment-1.ics", "text/calendar")
    assert calendar.path.read_bytes().decode().replace("\r\n", "\n") == invite.replace("\r\n", "\n")


def test_smime_signed_message(spool: Path) -> None:
    signature = bytes(range(120))
    raw = fixture("smime-signed-message.eml")
    parsed = parse(raw, spool)
    assert parsed.text_body == "Signed text with ümlaut"
    assert parsed.html_body == "<p>Signed html</p>"
    (p7s,) = parsed.attachments
    assert (p7s.filename, p7s.content_type) == ("smime.p7s", "application/pkcs7-signature")
    assert p7s.path.read_bytes() == signature
    assert parsed.problems == ()


def test_attachment_over_the_limit_is_left_out(spool: Path) -> None:
    message = basic_message()
    message.add_attachment(os.urandom(5000), "application", "octet-stream", filename="big.bin")
    message.add_attachment(PDF, "application", "pdf", filename="small.pdf")
    parsed = parse(message.as_bytes(), spool, max_attachment_bytes=2000)
    assert [attachment.filename for attachment in parsed.attachments] == ["small.pdf"]
    assert any("'big.bin' is larger than" in problem for problem in parsed.problems)
    assert list(spool.iterdir()) == [parsed.attachments[0].path]


def test_file_like_input(spool: Path) -> None:
    raw = nested_message().as_bytes()
    parsed = parse_message(io.BytesIO(raw), spool_dir=spool)
    assert parsed.size == len(raw)
    assert parsed.dedupe_key() == parse(raw, spool).dedupe_key()
    assert [attachment.filename for attachment in parsed.attachments] == ["logo.png", "Estimate 42.pdf"]


class FailingStream(io.BytesIO):
    """A mailbox download that breaks off after part of the message."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        super().__init__(data)
        self._fail_after = fail_after

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self._fail_after:
            raise ConnectionResetError("connection lost")
        return super().read(size)


def test_failure_midway_leaves_no_spool_files(spool: Path) -> None:
    message = basic_message()
    message.add_attachment(os.urandom(200_000), "application", "octet-stream", filename="first.bin")
    message.add_attachment(os.urandom(200_000), "application", "octet-stream", filename="second.bin")
    raw = message.as_bytes()
    with pytest.raises(ConnectionResetError):
        parse_message(FailingStream(raw, fail_after=len(raw) - 1000), spool_dir=spool)
    assert list(spool.iterdir()) == []


def test_large_attachment_memory_stays_bounded(spool: Path) -> None:
    """A 25 MB attachment: the raw message, plus one pass of decoding straight to disk."""
    content = os.urandom(25 * 1024 * 1024)
    message = basic_message()
    message.add_attachment(b"placeholder", "application", "octet-stream", filename="site-survey.zip")
    raw = message.as_bytes().replace(
        base64.encodebytes(b"placeholder").rstrip(), base64.encodebytes(content).rstrip().replace(b"\n", b"\r\n")
    )
    expected_sha256 = hashlib.sha256(content).hexdigest()
    del content

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        parsed = parse(raw, spool)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    (survey,) = parsed.attachments
    assert survey.size == 25 * 1024 * 1024
    assert survey.sha256 == expected_sha256
    assert survey.path.stat().st_size == survey.size
    assert peak < 150 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"


def test_the_ingest_benchmark_corpus_is_fixed_and_fully_read(spool: Path) -> None:
    """The benchmark compares parsers on this corpus: it must be the same every time, and read whole."""
    from bench.ingest_corpus import corpus

    messages = corpus()
    assert len(messages) >= 200 and messages == corpus()
    for raw in messages:
        parsed = parse(raw, spool)
        assert parsed.subject and parsed.date is not None and parsed.text_body.strip()


def test_an_unclosed_quote_and_prose_between_begin_and_end_lose_nothing(spool: Path) -> None:
    parsed = parse(fixture("unclosed-quote-and-begin-end-prose.eml"), spool)
    assert parsed.from_ == Address("Smith, Ann", "ann@example.com")
    # "begin 644 name" ... "end" around lines that are not uuencoded: it is text, kept as written.
    assert parsed.text_body == "begin 644 plan.txt\nWe should begin the plan soon.\nend\n"
    assert parsed.attachments == ()


def test_uuencoded_file_in_the_text_becomes_an_attachment(spool: Path) -> None:
    parsed = parse((Path(__file__).parent / "mail" / "uuencode-in-plain-body.eml").read_bytes(), spool)
    (plan,) = parsed.attachments
    assert (plan.filename, plan.content_type) == ("siteplan.txt", "text/plain")
    assert plan.path.read_bytes() == b"Site plan, phase 2\n" * 8
    assert "begin 644" not in parsed.text_body and parsed.text_body.startswith("Plan attached the old way.")
