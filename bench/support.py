"""What the benchmarks share: a database of their own, a sandbox of their own with mailboxes
connected through the providers' sign-in pages, realistic mail, and real worker processes."""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from accounts.mailbox import SyncChoices, connect_mailbox
from accounts.models import Company, MailboxConnection, SyncRun, User
from accounts.provider_registry import get_provider
from accounts.signals import sync_requested
from activities.models import Activity
from crm.models import Contact
from mailsync.capture import run_capture

# A 1x1 PNG stretched with a comment chunk to the size of a typical signature logo.
PNG_HEADER = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def p95(values: list[float]) -> float:
    """The 95th percentile, as every benchmark reports it: interpolated between the measured values
    (``statistics.quantiles``' inclusive method, so never above the slowest, as the exclusive one
    is on a few dozen values); a single value is its own."""
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


@dataclass
class Mailbox:
    provider: str
    address: str
    connection: MailboxConnection
    message_ids: list[str] = field(default_factory=list)


# -- test mail ------------------------------------------------------------------------------------


def plain_mail(*, sender: str, to: str, subject: str, body: str, message_id: str = "",
               date: dt.datetime | None = None, in_reply_to: str = "") -> MimeMessage:
    """A plain-text message with the headers all the benchmarks' mail has (a reply's too);
    callers add parts and headers to it."""
    mail = MimeMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail["Date"] = format_datetime(date or timezone.now())
    mail["Message-ID"] = message_id or make_msgid(domain="bench.example")
    if in_reply_to:
        mail["In-Reply-To"] = mail["References"] = in_reply_to
    mail.set_content(body)
    return mail


class MailFactory:
    """Mail as an office receives it: mostly short plain or HTML replies, HTML with an inline logo,
    now and then a PDF. Some senders are contacts of the company, some are not."""

    def __init__(self, rng: random.Random, contacts: list[str]) -> None:
        self.rng = rng
        self.contacts = contacts
        self.strangers = [f"lead{n}@prospects.example" for n in range(40)]

    def paragraph(self) -> str:
        words = ("mulch", "irrigation", "invoice", "crew", "Friday", "estimate", "sprinkler", "hedges", "walk",
                 "property", "schedule", "please", "thanks", "the", "and", "we", "can", "next", "week", "quote")
        return " ".join(self.rng.choice(words) for _ in range(self.rng.randint(30, 90))).capitalize() + "."

    def message(self, n: int, to: str) -> bytes:
        rng = self.rng
        sender = rng.choice(self.contacts) if rng.random() < 0.7 else rng.choice(self.strangers)
        text = "\n\n".join(self.paragraph() for _ in range(rng.randint(1, 4)))
        message = plain_mail(sender=f"Sender {n} <{sender}>", to=to, subject=f"Re: property visit #{n}", body=text,
                             message_id=make_msgid(idstring=f"bench{n}", domain="bench.example"),
                             date=timezone.now() - dt.timedelta(minutes=n))
        if rng.random() < 0.3:
            message["Cc"] = ", ".join(rng.sample(self.contacts, 2))
        kind = rng.random()  # below 0.55: plain text alone
        if 0.55 <= kind < 0.9:
            logo = make_msgid(domain="bench.example")
            message.add_alternative(
                f'<html><body><p>{text.replace(chr(10), "<br>")}</p><img src="cid:{logo[1:-1]}"></body></html>',
                subtype="html",
            )
            html_part = message.get_body(("html",))
            assert isinstance(html_part, MimeMessage)
            html_part.add_related(PNG_HEADER + rng.randbytes(rng.randint(4_000, 20_000)), maintype="image",
                                  subtype="png", cid=logo, filename="logo.png")
        elif kind >= 0.9:
            message.add_attachment(rng.randbytes(rng.randint(30_000, 200_000)), maintype="application",
                                   subtype="pdf", filename=f"Estimate {n}.pdf")
        return bytes(message)

    def large(self, to: str, size: int) -> bytes:
        message = plain_mail(sender=f"Site photos <{self.contacts[0]}>", to=to, subject="Site photos (large)",
                             body="The photos from this morning's walk.")
        message.add_attachment(os.urandom(size), maintype="application", subtype="zip", filename="photos.zip")
        return bytes(message)


# -- processes ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (by parent pid), as /proc shows them now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [pid]
    for candidate in tree:
        tree.extend(child for child, parent in parents.items() if parent == candidate)
    return tree


def peak_memory_mb(pid: int) -> float:
    """The highest VmHWM (peak resident memory) over the process and its children."""
    peak = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def reset_peak_memory(pid: int) -> bool:
    """Start VmHWM again from the current resident size ("5" to clear_refs, Linux 4.0+)."""
    try:
        for member in process_tree(pid):
            Path(f"/proc/{member}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def ready(self) -> bool:
        return "ready." in self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_workers(count: int, env: dict[str, str], log_dir: Path, tag: str, *, queues: str = "mail",
                  first: int = 0, pool: str = "solo", concurrency: int = 1) -> list[Worker]:
    workers = []
    for n in range(first, first + count):
        log_path = log_dir / f"worker-{n}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "aspire_sync", "worker", "-Q", queues, "--pool", pool,
                 "--concurrency", str(concurrency), "--hostname", f"bench-{n}-{tag}@%h", "-l", "INFO",
                 "--without-heartbeat", "--without-mingle", "--without-gossip"],
                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        workers.append(Worker(process, log_path))
    deadline = time.monotonic() + 60
    while not all(worker.ready() for worker in workers):
        for worker in workers:
            if worker.process.poll() is not None:
                raise CommandError(f"a worker exited: {worker.log_path.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise CommandError("the workers did not start within a minute")
        time.sleep(0.1)
    return workers


def start_web(env: dict[str, str], log_path: Path, port: int) -> subprocess.Popen[bytes]:
    """The web app on ``port`` (to receive the providers' push notifications), once it answers."""
    web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                           cwd=settings.BASE_DIR, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise CommandError("the web server exited")
            try:
                if session.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200:
                    return web
            except requests.RequestException:
                pass
            time.sleep(0.2)
    web.terminate()
    raise CommandError("the web server did not answer within a minute")


def tasks_run(log_dir: Path) -> Counter[str]:
    """Tasks that finished (succeeded, retried or raised), by name, from the workers' INFO logs."""
    finished = re.compile(r"Task (\S+?)\[[0-9a-f-]+\] (?:succeeded|retry|raised)")
    counts: Counter[str] = Counter()
    for log in log_dir.glob("worker-*.log"):
        counts.update(finished.findall(log.read_text(errors="replace")))
    return counts


@contextmanager
def sync_dispatch_muted() -> Iterator[None]:
    # Connecting a mailbox asks for a sync at once (a dispatch task); the benchmark enqueues its
    # own capture tasks when it starts the clock, so those requests are held back here.
    receivers = sync_requested.receivers
    sync_requested.receivers = []
    sync_requested.sender_receivers_cache.clear()
    try:
        yield
    finally:
        sync_requested.receivers = receivers
        sync_requested.sender_receivers_cache.clear()



def delete_company(company: Company) -> None:
    """Everything a benchmark made for a company, then the company."""
    Activity.objects.filter(company=company).delete()
    SyncRun.objects.filter(connection__company=company).delete()
    MailboxConnection.objects.filter(company=company).delete()
    Contact.objects.filter(company=company).delete()
    User.objects.filter(company=company).delete()
    company.delete()


# -- the database and the sandbox ---------------------------------------------------------------


class SandboxBench(BaseCommand):
    """A benchmark on a database of its own (``bench`` in its name, PostgreSQL, created and migrated
    when missing), whose companies are named ``company_prefix``, against a sandbox of its own
    (``self.sandbox``) in which ``connect`` signs mailboxes in as a user would."""

    sandbox: Any
    company: Company
    tag: str

    @property
    def label(self) -> str:
        """The command's name, as it is typed after ``manage.py``."""
        return type(self).__module__.rpartition(".")[2]

    @property
    def company_prefix(self) -> str:
        """What the names of the companies this benchmark makes start with ("Bench mail "), so an
        interrupted run's are found and removed by the next."""
        return self.label.replace("_", " ").capitalize() + " "

    # -- safety ---------------------------------------------------------------------------------

    def use_dedicated_database(self) -> None:
        """Run only on a database meant for benchmarks; create and migrate it when missing."""
        db = connections["default"].settings_dict
        name = Path(str(db["NAME"])).name
        if "bench" not in name.lower():
            raise CommandError(
                f"{self.label} writes to the configured database ({name}) and needs one of its own: point "
                "DATABASE_URL at a database with 'bench' in its name, e.g. "
                "postgres://postgres@127.0.0.1:5432/aspire_bench (created if missing)."
            )
        if not db["ENGINE"].endswith("postgresql"):
            # SQLite takes one writer at a time, and a transaction that reads before it writes
            # cannot wait for the lock: two workers committing pages fail with "database is locked".
            raise CommandError(f"{self.label} runs workers against one database: use PostgreSQL, e.g. "
                               "DATABASE_URL=postgres://postgres@127.0.0.1:5432/aspire_bench")
        self.create_postgres_database(db)
        call_command("migrate", interactive=False, verbosity=0)
        for leftover in Company.objects.filter(name__startswith=self.company_prefix):
            self.delete_company(leftover)  # an earlier run that was interrupted
        foreign = Company.objects.count() + User.objects.filter(company__isnull=True).count()
        if foreign:
            raise CommandError(f"{name} holds data {self.label} did not make ({foreign} companies or operators); "
                               "use an empty database.")

    @staticmethod
    def create_postgres_database(db: dict[str, Any]) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        params = {"dbname": "postgres", "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"],
                  "port": db["PORT"]}
        conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v})
        with psycopg.connect(conninfo, autocommit=True) as maintenance:
            exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
            if not exists:
                maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))

    delete_company = staticmethod(lambda company: delete_company(company))

    @contextmanager
    def sandboxed(self, prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
        """A sandbox of the benchmark's own in a scratch folder: the folder, and the settings that
        point the product at the sandbox (stopped and removed afterwards)."""
        from ops.demo_sandbox import sandbox_environment
        from sandbox.runner import start_sandbox

        with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
            root = Path(scratch)
            self.sandbox = start_sandbox(ca_dir=root / "ca")
            try:
                yield root, sandbox_environment(base_url=self.sandbox.base_url, ca_path=self.sandbox.ca_path,
                                                app_url="http://127.0.0.1:8000")
            finally:
                self.sandbox.stop()

    @contextmanager
    def served(self, root: Path, **settings_overrides: str) -> Iterator[dict[str, str]]:
        """A web app of the benchmark's own on a free port, which the sandbox pushes to (Graph's
        subscriptions and Gmail's Pub/Sub topic), with this process's settings pointed at the same
        sandbox and folders: yields the environment to start workers with."""
        from django.test.utils import override_settings

        from ops.demo_sandbox import sandbox_environment
        from sandbox.runner import free_port

        port = free_port()
        app_url = f"http://127.0.0.1:{port}"
        environment = {**sandbox_environment(base_url=self.sandbox.base_url, ca_path=self.sandbox.ca_path,
                                             app_url=app_url), **settings_overrides}
        folders = {"MEDIA_ROOT": root / "media", "MAIL_SPOOL_DIR": root / "spool"}
        self.sandbox.control("PUT", f"/pubsub/topics/{environment['GOOGLE_PUBSUB_TOPIC']}", json={
            "push_endpoint": f"{app_url}/hooks/google/pubsub/",
            "service_account_email": environment["GOOGLE_PUBSUB_SERVICE_ACCOUNT"]})
        env = {**os.environ, **environment, **{name: str(path) for name, path in folders.items()},
               "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        web = start_web(env, root / "web.log", port)
        try:
            with override_settings(**environment, **folders):
                yield env
        finally:
            web.terminate()
            web.wait(timeout=30)

    # -- setting up -----------------------------------------------------------------------------

    def connect(self, provider: str, n: int, *, sync_calendar: bool = False) -> Mailbox:
        """A sandbox mailbox connected as a user would: the provider's sign-in pages, then back."""
        from sandbox.signin import ProviderSignIn

        address = f"{provider}{n}-{self.tag}@bench.example"
        self.sandbox.control("POST", "/accounts", json={"provider": provider, "email": address})
        user = User.objects.create(email=address, company=self.company, full_name=f"Bench {n}", password="!")
        adapter = get_provider(provider)
        request = adapter.begin_sign_in(state=uuid.uuid4().hex, login_hint=address)
        callback = ProviderSignIn(self.sandbox, request.url, settings.OAUTH_REDIRECT_URI).sign_in(address)
        if callback is None:
            raise CommandError(f"the sandbox sign-in for {address} did not come back")
        grant = adapter.complete_sign_in(flow=request.flow, params=dict(parse_qsl(urlsplit(callback).query)))
        choices = SyncChoices(sync_email=True, sync_calendar=sync_calendar, sync_aspire_folder=True,
                              calendar_privacy="public", shared_with=(), provider=provider, mailbox_address=address)
        with sync_dispatch_muted():
            connection = connect_mailbox(user=user, choices=choices, grant=grant, identity=adapter.identify(grant))
        # The first run creates the Aspire and Processed folders; the timed runs find them.
        run_capture(connection_id=connection.pk, owner="bench-setup")
        return Mailbox(provider, address, connection)

    def drop(self, mailbox: Mailbox, raw: bytes, folder: str = "Aspire") -> str:
        answer = self.sandbox.control("POST", f"/accounts/{mailbox.provider}/{mailbox.address}/messages",
                                      json={"folder": folder, "raw_base64": base64.b64encode(raw).decode()})
        return str(answer["id"])

