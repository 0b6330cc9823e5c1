"""`make demo` as a newcomer meets it: it says what it is doing, its sandbox links open the demo
mailboxes, and Ctrl-C stops every process cleanly. Runs the real command (web, worker, beat and
sandbox processes) on a database, broker and sandbox state of its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, **kwargs: object) -> bool:
    try:
        requests.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException:
        return False
    return True


def test_the_demo_says_what_it_does_links_its_mailboxes_and_stops_cleanly(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}", "CELERY_BROKER_DIR": str(tmp_path / "broker"),
                "MEDIA_ROOT": str(tmp_path / "media"), "MAIL_SPOOL_DIR": str(tmp_path / "spool"),
                "EMAIL_FILE_PATH": str(tmp_path / "sent-mail"),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PYTHONUNBUFFERED": "1"})
    output = tmp_path / "demo.log"
    with output.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "rundemo", "--port", str(port), "--sandbox-port", str(sandbox_port),
             "--sandbox-dir", str(tmp_path / "sandbox"), "--sandbox-state", str(tmp_path / "sandbox.json")],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop everything." not in output.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, output.read_text()
            time.sleep(0.5)
        text = output.read_text()
        steps = ["Migrating the database", "Loading the demo data", "Starting the provider sandbox",
                 "Starting the Celery worker", "Starting Celery beat", "Starting the web server",
                 "Aspire Sync is running", "Press Ctrl-C to stop everything."]
        positions = [text.find(step) for step in steps]
        assert -1 not in positions and positions == sorted(positions), text
        # The web app answers by the time the sign-ins are printed.
        assert requests.get(f"http://127.0.0.1:{port}/login/", timeout=5).status_code == 200
        # Where the mail it sends can be read, behind the sign-in.
        assert f"http://127.0.0.1:{port}/dev/mail/" in text
        sent_mail = requests.get(f"http://127.0.0.1:{port}/dev/mail/", timeout=5, allow_redirects=False)
        assert sent_mail.status_code == 302 and "/login/" in sent_mail.headers["Location"]

        # Every sandbox link printed opens that demo mailbox's page.
        pages = re.findall(rf"https://localhost:{sandbox_port}/\S+", text)
        assert len(pages) == 4, text
        ca = str(tmp_path / "sandbox" / "ca.pem")
        for page in pages:
            response = requests.get(page, verify=ca, timeout=5)
            address = page.rsplit("/", 1)[1]
            assert response.status_code == 200 and f"Sandbox mailbox: {address}" in response.text, page
        assert f"https://localhost:{sandbox_port}/_sandbox/mail/google/james@greenleaf.example" in pages

        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=90) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    stopped = output.read_text()[len(text):]
    assert "Stopping…" in stopped and "Stopped." in stopped, stopped
    assert "ERROR" not in stopped and "Traceback" not in stopped, stopped
    # Nothing outlives the demo.
    assert not answers(f"http://127.0.0.1:{port}/healthz")
    assert not answers(f"https://localhost:{sandbox_port}/_sandbox/health", verify=False)
