"""A request declared larger than any upload Aspire takes is refused at its headers (413), before
its body is read: the server neither waits for nor stores 300 MB."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from accounts.models import User
from crm.models import Contact
from tests.conftest import client_for


def test_an_oversized_request_is_refused_before_it_is_read(live_server: Any, contact: Contact) -> None:
    address = urlsplit(live_server.url)
    declared = 300 * 1024 * 1024
    started = time.monotonic()
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall((f"POST /mail/compose/contact/{contact.pk}/ HTTP/1.1\r\nHost: {address.netloc}\r\n"
                      "Content-Type: multipart/form-data; boundary=x\r\n"
                      f"Content-Length: {declared}\r\n\r\n").encode() + b"x" * 65536)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5  # answered at once: nothing waited for the other 299.9 MB


@pytest.mark.django_db
def test_the_413_page_says_what_the_limit_is(bob: User, contact: Contact) -> None:
    response = client_for(bob).post(f"/mail/compose/contact/{contact.pk}/", b"",
                                    content_type="multipart/form-data; boundary=x",
                                    CONTENT_LENGTH=str(settings.MAX_REQUEST_BYTES + 1))
    assert response.status_code == 413
    assert "up to 25 MB of attachments per message" in response.content.decode()
    # A request within the limit goes on to the page as before.
    assert client_for(bob).post(f"/mail/compose/contact/{contact.pk}/", {"to": ""}).status_code == 200
