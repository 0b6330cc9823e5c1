"""What sending needs from the adapters, through the real client libraries: a send whose answer is
lost is reported as an unknown outcome (never retried unseen, not even inside httplib2), and
``find_sent`` finds a message by its Message-ID."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator

import pytest

from providers.base import Grant
from providers.errors import SendOutcomeUnknown, TransientError
from providers.google import GoogleConfig, GoogleProvider

RAW = (b"From: bob@greenleaf.example\r\nTo: dana@example.com\r\nSubject: Invoice\r\n"
       b"Message-ID: <invoice-1@greenleaf.example>\r\n\r\nHello\r\n")


class SilentServer:
    """A loopback HTTP server that reads each request and closes the connection without a word,
    as a proxy that loses the answer does. It counts the requests it received."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                if received:
                    self.requests += 1

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def google_on(base: str) -> tuple[GoogleProvider, Grant]:
    provider = GoogleProvider(GoogleConfig(client_id="aspire", client_secret="secret", redirect_uri="http://x/",
                                           token_uri=f"{base}/token", api_endpoint=f"{base}/", timeout=5))
    grant = Grant(data={"refresh_token": "unused"}, access_token="token",
                  expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    return provider, grant


def test_gmail_send_whose_answer_never_comes_is_sent_once_and_reported_unknown(silent_server: SilentServer) -> None:
    provider, grant = google_on(f"http://127.0.0.1:{silent_server.port}")
    with pytest.raises(SendOutcomeUnknown) as unknown:
        provider.send_mime(grant, RAW)
    assert not isinstance(unknown.value, TransientError)
    # httplib2 on its own sends a request again when a connection closes before the answer;
    # for a send, that would be a second copy nobody sees.
    assert silent_server.requests == 1


def test_gmail_send_to_a_closed_port_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    provider, grant = google_on(f"http://127.0.0.1:{port}")  # nothing listens: nothing was sent
    with pytest.raises(TransientError):
        provider.send_mime(grant, RAW)
