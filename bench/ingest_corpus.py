"""A deterministic corpus of the mail an office really receives, for the ingest benchmark.

Most of it is ordinary (short plain replies, HTML newsletters and replies with an inline logo, PDFs
and photos, forwarded messages, calendar invites, long threads), and a fifth of it is the kind of
mail older clients and gateways produce: raw 8-bit headers, encoded words, broken or missing
multipart boundaries, missing Content-Type, damaged base64, unknown charsets, CR-only line ends,
addresses without a domain, no Message-ID. The same seed always gives the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

CORPUS_SIZE = 240
# A 1x1 PNG header, padded to the size of a typical signature logo.
_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
_WORDS = ("mulch", "irrigation", "invoice", "crew", "Friday", "estimate", "sprinkler", "hedges", "walk",
          "property", "schedule", "please", "thanks", "the", "and", "we", "can", "next", "week", "quote",
          "retaining", "wall", "patio", "drainage", "sod", "aeration", "fertilizer", "trimming", "Monday")
_NAMES = ("Dana Whitfield", "Marcus Lee", "Priya Natarajan", "James O'Connor", "Smith, Ann", "Jürgen Müller",
          "Zoë Ångström", "François Dubois", "María José Peña", "Łukasz Wójcik", "山田 太郎")


def corpus(seed: int = 14, size: int = CORPUS_SIZE) -> list[bytes]:
    """`size` raw messages, the same bytes for the same seed."""
    rng = random.Random(seed)  # noqa: S311  # reproducible test data, not secrets
    start = dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)
    kinds = [_plain, _plain, _plain, _html_with_logo, _html_with_logo, _pdf, _photos, _forwarded, _thread,
             _invite, _newsletter, _many_recipients, _encoded_headers, _raw_8bit_headers, _broken_boundary,
             _no_content_type, _damaged_base64, _odd_charset, _cr_only, _name_only_addresses]
    return [kinds[n % len(kinds)](rng, n, start - dt.timedelta(minutes=7 * n)) for n in range(size)]


# -- the pieces -------------------------------------------------------------------------------------


def _address(rng: random.Random, n: int) -> tuple[str, str]:
    name = rng.choice(_NAMES)
    local = "".join(c for c in name.lower() if c.isascii() and c.isalpha())[:12] or "user"
    return name, f"{local}{n % 17}@{rng.choice(('example.com', 'oakridge.example', 'prospects.example'))}"


def _paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 80))).capitalize() + "."


def _text(rng: random.Random, paragraphs: tuple[int, int] = (1, 4)) -> str:
    return "\n\n".join(_paragraph(rng) for _ in range(rng.randint(*paragraphs)))


def _base(rng: random.Random, n: int, when: dt.datetime, *, subject: str | None = None) -> EmailMessage:
    message = EmailMessage()
    name, address = _address(rng, n)
    message["From"] = f'"{name}" <{address}>' if "," in name else f"{name} <{address}>"
    message["To"] = "Bob Staff <bob@greenleaf.example>"
    if rng.random() < 0.3:
        message["Cc"] = ", ".join(_address(rng, n + k)[1] for k in range(1, 3))
    message["Subject"] = subject or f"Re: property visit #{n}"
    message["Date"] = format_datetime(when)
    message["Message-ID"] = f"<ingest.{n}.{rng.getrandbits(32):08x}@mail.example.com>"
    return message


def _wire(message: EmailMessage, n: int) -> bytes:
    """The message as it travels (CRLF line ends), with boundaries of its own instead of random ones."""
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_ingest_{n}_{index}")
    return message.as_bytes(policy=SMTP)


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _plain(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when)
    message.set_content(_text(rng))
    return _wire(message, n)


def _html(text: str, extra: str = "") -> str:
    paragraphs = "".join(f"<p style=\"margin:0 0 12px\">{p}</p>" for p in text.split("\n\n"))
    return (f"<html><head><meta charset=\"utf-8\"><style>p {{ font-family: Arial }}</style></head><body>"
            f"<div dir=\"ltr\">{paragraphs}{extra}</div></body></html>")


def _html_with_logo(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when)
    text = _text(rng)
    message.set_content(text)
    cid = f"logo.{n}@greenleaf.example"
    message.add_alternative(_html(text, f'<table><tr><td><img src="cid:{cid}"></td><td><b>Greenleaf</b>'
                                        f"<br>512-555-0142</td></tr></table>"), subtype="html")
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(_PNG + rng.randbytes(rng.randint(3_000, 15_000)), maintype="image", subtype="png",
                          cid=f"<{cid}>", filename="logo.png")
    return _wire(message, n)


def _pdf(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject=f"Estimate {n} attached")
    message.set_content(_text(rng, (1, 2)))
    message.add_attachment(b"%PDF-1.4\n" + rng.randbytes(rng.randint(20_000, 120_000)), maintype="application",
                           subtype="pdf", filename=f"Estimate {n}.pdf")
    return _wire(message, n)


def _photos(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject="Photos from the site walk")
    message.set_content("Photos attached.")
    for k in range(rng.randint(2, 4)):
        message.add_attachment(b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randint(15_000, 60_000)), maintype="image",
                               subtype="jpeg", filename=f"IMG_{4000 + n * 5 + k}.jpg")
    return _wire(message, n)


def _forwarded(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    inner = _base(rng, n + 1000, when - dt.timedelta(days=1), subject="Original quote")
    inner.set_content(_text(rng, (1, 2)))
    inner.add_attachment(b"%PDF-1.4\n" + rng.randbytes(8_000), maintype="application", subtype="pdf",
                         filename="quote.pdf")
    message = _base(rng, n, when, subject="Fwd: Original quote")
    message.set_content("Forwarding the quote below.")
    message.add_attachment(inner)
    return _wire(message, n)


def _thread(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject="Re: Re: Re: spring schedule")
    message["In-Reply-To"] = f"<thread.{n - 1}@mail.example.com>"
    message["References"] = " ".join(f"<thread.{k}@mail.example.com>" for k in range(max(0, n - 8), n))
    quoted = "\n".join("> " + line for line in _text(rng, (4, 8)).splitlines())
    message.set_content(f"{_paragraph(rng)}\n\nOn Monday, Bob wrote:\n{quoted}\n")
    return _wire(message, n)


def _invite(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject="Invitation: site visit")
    message.set_content("You are invited to a site visit.")
    message.add_alternative(_html("You are invited to a <b>site visit</b>."), subtype="html")
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    message.add_alternative(
        f"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:visit-{n}@example.com\r\nDTSTART:{stamp}\r\n"
        f"SUMMARY:Site visit\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", subtype="calendar", params={"method": "REQUEST"})
    return _wire(message, n)


def _newsletter(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject="Spring newsletter: 5 tips for your lawn")
    del message["Message-ID"]  # bulk mailers often leave it to the relay, which sometimes does not add one
    rows = "".join(f"<tr><td class=\"c\"><h2>Tip {k}</h2><p>{_paragraph(rng)}</p>"
                   f"<a href=\"https://news.example/tip/{n}/{k}\">Read more</a></td></tr>" for k in range(1, 6))
    message.set_content(_html("", f"<table width=\"600\">{rows}</table>"), subtype="html")
    return _wire(message, n)


def _many_recipients(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    message = _base(rng, n, when, subject="HOA: community cleanup day")
    del message["To"]
    message["To"] = ", ".join(f'"Neighbor {k}, Jr." <neighbor{k}@example.net>' for k in range(120))
    message.set_content(_text(rng, (1, 1)))
    return _wire(message, n)


def _encoded_headers(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    subject = base64.b64encode("Angebot für Gärten \u2013 Frühjahr".encode()).decode()
    return _crlf(
        f"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen{n}@example.de>\n"
        f"To: =?iso-8859-1?q?Fran=E7ois?= <bob@greenleaf.example>\n"
        f"Subject: =?utf-8?b?{subject}?=\n Nr. {n}\nDate: {format_datetime(when)}\n"
        f"Message-ID: <enc.{n}@example.de>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe aus M=C3=BCnchen,\nbis Freitag.\n"
    )


def _raw_8bit_headers(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    head = (f"From: Renée Lefèvre <renee{n}@example.fr>\nTo: Bob <bob@greenleaf.example>\n"
            f"Subject: Devis n°{n} - jardin\nDate: {format_datetime(when)}\nMessage-ID: <latin.{n}@example.fr>\n"
            "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n")
    body = "Voici le devis pour l'entretien du jardin. Très cordialement.\n"
    return (head + body).replace("\n", "\r\n").encode("latin-1")


def _broken_boundary(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    text = _text(rng, (1, 2))
    declared = "declared" if n % 2 else ""
    content_type = f'multipart/alternative; boundary="{declared}"' if declared else "multipart/alternative"
    return _crlf(
        f"From: Dana <dana{n}@example.com>\nTo: bob@greenleaf.example\nSubject: Broken boundary {n}\n"
        f"Date: {format_datetime(when)}\nMessage-ID: <broken.{n}@example.com>\nMIME-Version: 1.0\n"
        f"Content-Type: {content_type}\n\n--used-{n}\nContent-Type: text/plain\n\n{text}\n"
        f"--used-{n}\nContent-Type: text/html\n\n{_html(text)}\n--used-{n}--\n"
    )


def _no_content_type(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    return _crlf(
        f"From: dana{n}@example.com\nTo: bob@greenleaf.example\nSubject: Quick note {n}\n"
        f"Date: {format_datetime(when)}\n\n{_text(rng, (1, 2))}\nSee you at 12 Elm Street \u2013 bring the trailer.\n"
    )


def _damaged_base64(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    encoded = base64.encodebytes(b"%PDF-1.4\n" + rng.randbytes(6_000)).decode()
    damaged = encoded[:300] + "!!" + encoded[300:-10]
    return _crlf(
        f"From: Dana <dana{n}@example.com>\nTo: bob@greenleaf.example\nSubject: Invoice {n}\n"
        f"Date: {format_datetime(when)}\nMessage-ID: <b64.{n}@example.com>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nInvoice attached.\n'
        f"--b\nContent-Type: application/pdf; name=invoice-{n}.pdf\nContent-Transfer-Encoding: base64\n\n"
        f"{damaged}\n"
    )


def _odd_charset(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    head = _crlf(
        f"From: Li Wei <li{n}@example.cn>\nTo: bob@greenleaf.example\nSubject: =?gb2312?b?"
        f"{base64.b64encode('报价'.encode('gb18030')).decode()}?=\nDate: {format_datetime(when)}\n"
        f"Message-ID: <cs.{n}@example.cn>\nMIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset={'x-unknown' if n % 2 else 'gb2312'}\n\n"
    )
    return head + "您好\uff0c报价见附件。".encode("gb18030") + b"\r\n"


def _cr_only(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    return (f"From: Old Mac <mac{n}@example.com>\rTo: bob@greenleaf.example\rSubject: From an old client {n}\r"
            f"Date: {format_datetime(when)}\rMessage-ID: <cr.{n}@example.com>\r\r"
            f"{_paragraph(rng)}\r{_paragraph(rng)}\r").encode()


def _name_only_addresses(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    return _crlf(
        f"From: Billing Department\nTo: undisclosed-recipients:;\nCc: John Smith, Ann <ann>\n"
        f"Subject: Statement {n}\nDate: {format_datetime(when)}\n\nYour statement is ready.\n"
    )
