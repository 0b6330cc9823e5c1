"""Showing an email's HTML inside Aspire without letting it do anything.

Mail comes from anyone. Its HTML is cleaned with nh3 (Rust's ammonia) down to passive markup:
no scripts, event handlers, styles, forms, frames or embedded objects. Nothing in it may load
from the network until the viewer asks to see images, because remote images tell the sender
when and where the mail was read. Inline images (``cid:``) point at our own attachment
download instead. The email page also sends a Content-Security-Policy as a second fence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import nh3

# nh3's own allowlist minus image maps (their areas are links we would have to police too).
ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS - {"map", "area"})
# Dropped with their content, not just their tags: text inside these is code or page chrome.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "title", "noscript", "template", "head"})
# No style, class or id: CSS can load URLs and overlay our page, and ids could clash with ours.
ALLOWED_ATTRIBUTES = {
    tag: set(attributes)
    for tag, attributes in nh3.ALLOWED_ATTRIBUTES.items()
    if tag in ALLOWED_TAGS
}
LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
# Images embedded in the message itself, which load nothing from the network.
DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,", re.IGNORECASE)


@dataclass(frozen=True)
class CleanBody:
    html: str
    # Remote images left out because the viewer has not asked for them: "Show images" appears only then.
    blocked_images: int


def clean_email_html(html: str, *, inline_images: Mapping[str, str], allow_remote_images: bool) -> CleanBody:
    """Passive HTML for the email page.

    ``inline_images`` maps a Content-ID (without angle brackets, any case) to the download URL
    of the attachment that carries it.
    """
    inline = {_bare_content_id(cid).lower(): url for cid, url in inline_images.items()}
    own_urls = set(inline.values())
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        value = value.strip()
        lowered = value.lower()
        if tag == "a" and attribute == "href":
            return value if lowered.startswith(LINK_SCHEMES) else None
        if tag == "img" and attribute == "src":
            if lowered.startswith("cid:"):
                return inline.get(_bare_content_id(unquote(value[4:])).lower())
            if DATA_IMAGE.match(value):
                return value
            if lowered.startswith("//"):
                value, lowered = "https:" + value, "https:" + lowered
            if lowered.startswith(("http:", "https:")):
                if not allow_remote_images:
                    blocked += 1
                    return None
                # Only https images may load (the page's policy says so): try the same image securely.
                return "https:" + value[5:] if lowered.startswith("http:") else value
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        # Checked before `keep` sees the value, so cid: must pass here to be rewritten there.
        url_schemes={"http", "https", "mailto", "tel", "data", "cid"},
        # A relative URL would point into Aspire itself; only our own inline-image downloads may.
        url_relative=lambda url: url if url in own_urls else None,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    return CleanBody(html=cleaned, blocked_images=blocked)


def email_page_csp(*, allow_remote_images: bool) -> str:
    """The policy for a page that shows an email: our own scripts, styles and requests only;
    images from the internet only once the viewer asked for them."""
    images = "'self' data: https:" if allow_remote_images else "'self' data:"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _bare_content_id(content_id: str) -> str:
    return content_id.strip().strip("<>").strip()
