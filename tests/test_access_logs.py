"""The servers the project starts (runserver in the demo, gunicorn in production) log each request
without its query string: the OAuth callback's code and state never reach an access log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings

CALLBACK = "/settings/mailbox/callback/?code=M.C5-SECRET-CODE&state=SECRET-STATE-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_when_up(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            return requests.get(url, allow_redirects=False, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def server_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "CELERY_BROKER_DIR": str(tmp_path)}


def run_and_log(command: list[str], port: int, tmp_path: Path, log_file: Path | None = None) -> str:
    output = tmp_path / "output.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=server_env(tmp_path), stdout=sink,
                                   stderr=subprocess.STDOUT)
        try:
            response = request_when_up(f"http://127.0.0.1:{port}{CALLBACK}", process)
            assert response.status_code == 302  # to the sign-in page: the request was served
            time.sleep(0.5)  # let the log line be written
        finally:
            process.terminate()
            process.wait(timeout=20)
    return (log_file or output).read_text()


def test_runserver_logs_no_query_strings(tmp_path: Path) -> None:
    port = free_port()
    log = run_and_log([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], port, tmp_path)
    assert "/settings/mailbox/callback/" in log
    assert "SECRET" not in log


def test_gunicorn_logs_no_query_strings(tmp_path: Path) -> None:
    port = free_port()
    access_log = tmp_path / "access.log"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log = run_and_log([gunicorn, "aspire_sync.wsgi:application", "--config", "gunicorn.conf.py", "--bind",
                       f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", str(access_log)],
                      port, tmp_path, log_file=access_log)
    assert '"GET /settings/mailbox/callback/ HTTP/1.1" 302' in log
    assert "SECRET" not in log
