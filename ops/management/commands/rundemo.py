"""Run the whole product locally: web, Celery worker and beat, and the provider sandbox.

``make demo`` calls this after installing. It says what it is doing as it goes (the first start
migrates a new database and makes the sandbox's certificates). Ctrl-C (or SIGTERM) stops every
process it started, in an order that loses nothing and leaves no error behind: beat first (no new
work), then the worker once its running task is done (tasks it had not started stay queued for the
next start), then the web server, and the sandbox last, when nothing is talking to it any more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from aspire_sync.celery import known_queues
from ops.demo_data import DEMO_LOGINS, DEMO_PASSWORD
from ops.demo_sandbox import MFA_CODE, SANDBOX_PASSWORD, mailbox_pages, sandbox_environment, seed_sandbox


class Command(BaseCommand):
    help = "Migrate, load demo data, and run web, worker, beat and the provider sandbox until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8025")))
        # Where the sandbox keeps its certificates and its mailboxes between runs.
        parser.add_argument("--sandbox-dir", type=Path, default=settings.BASE_DIR / ".sandbox")
        parser.add_argument("--sandbox-state", type=Path, default=settings.LOCAL_DIR / "sandbox-state.json")

    def handle(self, *args: Any, port: int, sandbox_port: int, sandbox_dir: Path, sandbox_state: Path,
               **options: Any) -> None:
        self.stdout.write(f"Migrating the database ({settings.DATABASES['default']['NAME']})…")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Loading the demo data…")
        call_command("load_demo_data")
        # Metrics start from zero with each run, as prometheus_client's multiprocess mode asks.
        for stale in Path(settings.PROMETHEUS_MULTIPROC_DIR).glob("*.db"):
            stale.unlink(missing_ok=True)

        base: Path = settings.BASE_DIR
        python = sys.executable
        celery = str(Path(python).with_name("celery"))
        commands = {
            "sandbox": [
                python,
                "-m",
                "sandbox",
                "--port",
                str(sandbox_port),
                "--ca-dir",
                str(sandbox_dir),
                "--state",
                str(sandbox_state),
            ],
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": [
                celery,
                "-A",
                "aspire_sync",
                "--quiet",  # no banner: the lines below say what runs
                "worker",
                "-l",
                "INFO",
                "-Q",
                ",".join(known_queues()),
                "--concurrency",
                "8",  # threads (CELERY_WORKER_POOL): plenty for the demo's few mailboxes
            ],
            "beat": [
                celery,
                "-A",
                "aspire_sync",
                "--quiet",
                "beat",
                "-l",
                "INFO",
                "--schedule",
                str(settings.LOCAL_DIR / "celerybeat-schedule"),
            ],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}
        starting = {
            "sandbox": f"Starting the provider sandbox on https://localhost:{sandbox_port}/ (its stand-in for "
                       "Microsoft 365 and Google; the first start makes its local certificate authority)…",
            "worker": f"Starting the Celery worker (queues {', '.join(known_queues())})…",
            "beat": "Starting Celery beat (the hourly syncs and the minute jobs)…",
            "web": f"Starting the web server on http://127.0.0.1:{port}/…",
        }

        def stop(*_: Any) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stdout.write("Stopping…")
            # One at a time: beat stops handing out work; the worker's warm shutdown finishes the
            # task it is running (a task it had reserved goes back to the queue, acknowledged late);
            # the web server; the sandbox last, so no task loses its provider midway and no
            # connection is left open to it when it stops.
            for name, patience in (("beat", 10), ("worker", 60), ("web", 10), ("sandbox", 10)):
                process = processes.get(name)
                if process is None:
                    continue
                if process.poll() is None:
                    if name == "worker":
                        self.stdout.write("Letting the worker finish the task it is running…")
                    process.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=patience)
                # Whatever is left of its process group does not outlive the demo.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.stdout.write("Stopped. `make demo` again picks up where you left off; `make clean` starts over.")
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        sandbox_url = f"https://localhost:{sandbox_port}"
        ca_path = sandbox_dir / "ca.pem"
        env = {
            **os.environ,
            **sandbox_environment(base_url=sandbox_url, ca_path=ca_path, app_url=f"http://127.0.0.1:{port}"),
        }
        # Mail Aspire sends is kept in files and shown at /dev/mail/, unless mail is configured.
        keeps_mail = not (os.environ.get("EMAIL_URL") or os.environ.get("EMAIL_BACKEND"))
        if keeps_mail:
            env["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
        for name in ("sandbox", "worker", "beat", "web"):
            self.stdout.write(starting[name])
            # Each child gets its own process group, so stopping it also stops its own children.
            processes[name] = subprocess.Popen(commands[name], cwd=base, env=env, start_new_session=True)
            if name == "sandbox":
                self._wait_for_sandbox(sandbox_url, ca_path, processes[name])
                created = seed_sandbox(base_url=sandbox_url, ca_path=ca_path, app_url=f"http://127.0.0.1:{port}")
                if created:
                    self.stdout.write(f"Sandbox: created {created} demo mailboxes with mail and calendars.")
        # The sign-in page, not /healthz: that one answers 503 until beat and the worker have beaten.
        self._wait_for_web(f"http://127.0.0.1:{port}/login/", processes["web"])

        self.stdout.write(self.style.SUCCESS(f"\nAspire Sync is running: http://127.0.0.1:{port}/\n"))
        self.stdout.write(f"Sign in with any of these (password: {DEMO_PASSWORD}):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.email:<28} {login.role:<38} {login.company}")
        self.stdout.write(f"Admin: http://127.0.0.1:{port}/admin/")
        if keeps_mail:
            self.stdout.write(f"Mail Aspire sends (password resets, needs sign-in, Ask to reconnect), to whoever "
                              f"is signed in: http://127.0.0.1:{port}/dev/mail/")
        self.stdout.write(
            f"\nThe demo's mailboxes, in the provider sandbox (sign-in password {SANDBOX_PASSWORD}, one-time "
            f"code {MFA_CODE}). Each page is the mail client: Move to Aspire files a message in the Aspire folder."
        )
        for page in mailbox_pages(sandbox_url):
            self.stdout.write(f"  {page}")
        self.stdout.write(f"The browser warns once about the sandbox's own certificate ({ca_path}): accept it.")
        self.stdout.write("Press Ctrl-C to stop everything.\n")

        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the demo.")
                    stop()
            time.sleep(1)

    def _wait_for_web(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self._wait_for("The web server", process, lambda session: session.get(url, timeout=2).ok)

    def _wait_for_sandbox(self, url: str, ca_path: Path, process: subprocess.Popen[bytes]) -> None:
        self._wait_for("The provider sandbox", process, lambda session: ca_path.exists() and session.get(
            f"{url}/_sandbox/health", verify=str(ca_path), timeout=2).ok)

    @staticmethod
    def _wait_for(what: str, process: subprocess.Popen[bytes], ready: Callable[[requests.Session], bool]) -> None:
        # The session is closed at the end: an idle keep-alive connection to the sandbox would hold
        # up its stop (and make it log an error) when the demo ends.
        with requests.Session() as session:
            session.trust_env = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise CommandError(f"{what} exited with {process.returncode}.")
                with contextlib.suppress(requests.RequestException, OSError):
                    if ready(session):
                        return
                time.sleep(0.2)
        raise CommandError(f"{what} did not answer within a minute.")
