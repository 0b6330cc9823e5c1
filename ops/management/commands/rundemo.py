"""Run the whole product locally: web, Celery worker and beat, and the provider sandbox.

``make demo`` calls this after installing. Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from ops.demo_data import DEMO_LOGINS, DEMO_PASSWORD
from ops.demo_sandbox import sandbox_environment, seed_sandbox


class Command(BaseCommand):
    help = "Migrate, load demo data, and run web, worker, beat and the provider sandbox until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8025")))

    def handle(self, *args: Any, port: int, sandbox_port: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_demo_data")

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
                str(base / ".sandbox"),
                "--state",
                str(settings.LOCAL_DIR / "sandbox-state.json"),
            ],
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": [
                celery,
                "-A",
                "aspire_sync",
                "worker",
                "-l",
                "INFO",
                "-Q",
                "default,mail,calendar",
                "--concurrency",
                "2",
            ],
            "beat": [
                celery,
                "-A",
                "aspire_sync",
                "beat",
                "-l",
                "INFO",
                "--schedule",
                str(settings.LOCAL_DIR / "celerybeat-schedule"),
            ],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}

        def stop(*_: Any) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stdout.write("Stopping…")
            # Each main process shuts its own children down (Celery's pool, for one)...
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 15
            for process in processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                # ...and whatever is left of its process group does not outlive the demo.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        sandbox_url = f"https://localhost:{sandbox_port}"
        ca_path = base / ".sandbox" / "ca.pem"
        env = {
            **os.environ,
            **sandbox_environment(base_url=sandbox_url, ca_path=ca_path, app_url=f"http://127.0.0.1:{port}"),
        }
        for name, command in commands.items():
            # Each child gets its own process group, so stopping it also stops its own children.
            processes[name] = subprocess.Popen(command, cwd=base, env=env, start_new_session=True)
            if name == "sandbox":
                self._wait_for_sandbox(sandbox_url, ca_path, processes[name])
                created = seed_sandbox(base_url=sandbox_url, ca_path=ca_path, app_url=f"http://127.0.0.1:{port}")
                if created:
                    self.stdout.write(f"Sandbox: created {created} demo mailboxes with mail and calendars.")

        self.stdout.write(self.style.SUCCESS(f"\nAspire Sync is running: http://127.0.0.1:{port}/\n"))
        self.stdout.write(f"Sign in with any of these (password: {DEMO_PASSWORD}):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.email:<28} {login.role:<38} {login.company}")
        self.stdout.write(
            f"Admin: http://127.0.0.1:{port}/admin/   Provider sandbox: https://localhost:{sandbox_port}/"
        )
        self.stdout.write("Press Ctrl-C to stop everything.\n")

        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the demo.")
                    stop()
            time.sleep(1)

    def _wait_for_sandbox(self, url: str, ca_path: Path, process: subprocess.Popen[bytes]) -> None:
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"The provider sandbox exited with {process.returncode}.")
            with contextlib.suppress(requests.RequestException, OSError):
                if ca_path.exists() and session.get(f"{url}/_sandbox/health", verify=str(ca_path), timeout=2).ok:
                    return
            time.sleep(0.2)
        raise CommandError("The provider sandbox did not start within a minute.")
