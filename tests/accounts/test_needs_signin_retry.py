"""The needs-sign-in email survives a mail server that is down: the first attempt (after the commit
that found the grant refused) fails, and a task on a real worker tries again with the backoff
until the server answers, and sends it once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from accounts import grants
from accounts.models import MailboxConnection, User
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess, free_port
from tests.mailboxes import connected_mailbox
from tests.workers import real_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough of an SMTP server (RFC 5321) for Django's smtplib client; keeps each message."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int) -> None:
        self.messages: list[str] = []
        super().__init__(("127.0.0.1", port), SmtpSession)


class SmtpSession(socketserver.StreamRequestHandler):
    server: SmtpSink

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 sink ready")
        for raw in self.rfile:
            command = raw.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif command == "DATA":
                self.reply("354 go on")
                lines = []
                for body_line in self.rfile:
                    if body_line in (b".\r\n", b".\n"):
                        break
                    lines.append(body_line.decode(errors="replace"))
                self.server.messages.append("".join(lines))
                self.reply("250 kept")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                self.reply("250 ok")


@pytest.fixture
def mail_port(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A mail server's address with nothing listening yet, for this process and the worker."""
    port = free_port()
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_TIMEOUT": "3",
    }
    for name, value in smtp.items():
        monkeypatch.setenv(name, value)
        setattr(settings, name, int(value) if name in ("EMAIL_PORT", "EMAIL_TIMEOUT") else value)
    yield port


def test_a_needs_signin_email_the_mail_server_refused_is_sent_once_when_it_is_back(
    providers_on_sandbox: SandboxProcess, bob: User, mail_port: int
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    grant = grants.load_grant(connection)
    grants.store_grant(connection, dataclasses.replace(grant, expires_at=grant.expires_at - dt.timedelta(hours=2)))
    connection.save(update_fields=["grant_ciphertext", "token_expires_at"])
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant", "account": "bob@greenleaf.example"})

    with real_worker(queues="default", hostname="notice-worker@%h") as worker:
        with pytest.raises(AuthRevoked):
            run_capture(connection_id=connection.pk, owner="hourly")  # the email's first try: refused
        assert MailboxConnection.objects.get(pk=connection.pk).state == "needs_signin"
        sink = SmtpSink(mail_port)  # the mail server is back
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not sink.messages:
                assert worker.poll() is None, "the worker died"
                time.sleep(0.2)
            time.sleep(2)  # and nothing more follows
        finally:
            sink.shutdown()
            sink.server_close()

    assert len(sink.messages) == 1
    assert "Subject: Aspire: sign in again to keep your mail and calendar syncing" in sink.messages[0]
    assert "To: bob@greenleaf.example" in sink.messages[0]
