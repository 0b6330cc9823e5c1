"""Helpers for tests that connect mailboxes through the real sign-in against the sandbox."""

from __future__ import annotations

import base64
import html
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

from django.test import Client
from django.utils import timezone

from accounts.models import MailboxConnection, User
from sandbox.runner import SandboxProcess
from sandbox.signin import ProviderSignIn
from tests.conftest import REDIRECT_URI, client_for, mailbox_account


def settings_form(user: User, **sync: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"profile-full_name": user.full_name, "profile-time_zone": user.time_zone,
                            "sync-calendar_privacy": "public"}
    for key, value in sync.items():
        if value is True:
            data[f"sync-{key}"] = "on"
        elif value not in (False, None):
            data[f"sync-{key}"] = value
    return data


def start_signin(client: Client, user: User, provider: str, address: str, **sync: Any) -> str:
    fields = {"sync_email": True, "sync_calendar": True, "provider": provider, "mailbox_address": address, **sync}
    response = client.post("/settings/", settings_form(user, **fields))
    assert response.status_code == 302, response.content.decode()[:3000]
    return str(response["Location"])


def back_to_aspire(client: Client, callback_url: str) -> str:
    parts = urlsplit(callback_url)
    page = client.get(f"{parts.path}?{parts.query}", follow=True)
    assert page.status_code == 200
    return html.unescape(page.content.decode())  # the text as the person reads it


def connect(client: Client, sandbox: SandboxProcess, user: User, provider: str, address: str, *,
            sign_in_as: str | None = None, code: str | None = None, **sync: Any) -> str:
    """Save settings, sign in at the provider (with the one-time code when asked), come back."""
    authorize_url = start_signin(client, user, provider, address, **sync)
    assert authorize_url.startswith(sandbox.base_url)
    page = ProviderSignIn(sandbox, authorize_url, REDIRECT_URI)
    callback = page.sign_in(sign_in_as or address)
    if callback is None and code is not None:
        callback = page.enter_code(code)
    assert callback is not None, page.text[:2000]
    return back_to_aspire(client, callback)


def requests_to(sandbox: SandboxProcess, path_part: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "/requests")["requests"] if path_part in r["path"]]




def connected_mailbox(sandbox: SandboxProcess, user: User, provider: str, address: str, **spec: Any
                      ) -> MailboxConnection:
    """A sandbox mailbox for the user, connected with Sync Email and Sync Aspire Folder on."""
    mailbox_account(sandbox, provider, address, **spec)
    page = connect(client_for(user), sandbox, user, provider, address, sync_aspire_folder=True)
    assert "Connected as" in page, page[:2000]
    return MailboxConnection.objects.get(user=user)


def mime(subject: str, *, sender: str = "Dana Whitfield <dana@example.com>", to: str = "bob@greenleaf.example",
         cc: str | None = None, body: str = "Hello", message_id: str | None = None,
         attachment: bytes | None = None, in_reply_to: str | None = None, date: Any = None) -> str:
    message = MimeMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or timezone.now())
    message["Message-ID"] = message_id or make_msgid(domain="example.com")
    if in_reply_to:  # a reply, as mail clients write one
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="Invoice 88231.pdf")
    return message.as_string()


def drop(sandbox: SandboxProcess, provider: str, email: str, raw: str | bytes, folder: str = "Aspire") -> str:
    # Bytes go as base64, so mail that is not UTF-8 (raw 8-bit headers, odd charsets) arrives as it is.
    spec = {"raw_base64": base64.b64encode(raw).decode()} if isinstance(raw, bytes) else {"raw": raw}
    result = sandbox.control("POST", f"/accounts/{provider}/{email}/messages", json={"folder": folder, **spec})
    return str(result["id"])
