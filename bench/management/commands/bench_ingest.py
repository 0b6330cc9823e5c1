"""Benchmark ingest side by side with django-mailbox: the same bytes, the same PostgreSQL.

``python manage.py bench_ingest`` takes a corpus of mail of the kinds an office receives
(`bench.ingest_corpus`: plain, HTML with inline images, attachments, forwarded messages, 8-bit
and encoded headers, malformed ones), and in interleaved rounds measures:

- Aspire's parse alone (`mailsync.capture._parse`, the parser as capture calls it);
- Aspire's parse + store, in process: capture's path minus the provider fetch, pages of 50
  parsed and committed by `mailsync.capture._commit_page` (Activities, emails, contacts matched,
  sources, attachments written to storage), each round into an empty company;
- django-mailbox's ingest of the same bytes (`Mailbox.process_incoming_message`, what its
  `getmail` does for each message) into its own models and attachment files, in a throwaway
  virtualenv it installs into a temporary directory: it is never a dependency of the product.

It prints messages per second for each (median and spread over the rounds), the ratio of
Aspire's parse + store to django-mailbox's ingest (target: at least 3), and how many messages
each stored without error. It refuses any database without "bench" in its name; django-mailbox
gets a database of its own beside it (the same name with "_django_mailbox"), dropped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.test.utils import override_settings

from accounts.models import Company, MailboxConnection, User
from accounts.runs import RunCounts
from activities.models import Activity
from bench.ingest_corpus import CORPUS_SIZE, corpus
from bench.support import delete_company
from crm.models import Contact, ContactEmail
from mailsync import capture
from mailsync.mime import UnparseableMessage, parse_message
from providers.base import MessageRef

COMPANY_PREFIX = "Bench ingest "
TARGET_RATIO = 3.0
PAGE = capture.PAGE_SIZE
DJANGO_MAILBOX = "django-mailbox==4.10.1"
# The peer runs on the Django and driver versions the product pins, so only the ingest differs.
PEER_PACKAGES = [DJANGO_MAILBOX, "Django==5.2.19", "psycopg[binary]==3.3.9"]

# The peer's side: a minimal Django project around django_mailbox, taking rounds over stdin.
PEER_SCRIPT = r'''
import email, json, os, sys, time
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django_mailbox"],
    DATABASES={"default": json.loads(os.environ["PEER_DATABASE"])},
    MEDIA_ROOT=os.environ["PEER_MEDIA_ROOT"], USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django_mailbox.models import Mailbox, Message, MessageAttachment
corpus = [open(os.path.join(sys.argv[1], name), "rb").read() for name in sorted(os.listdir(sys.argv[1]))]
mailbox, _ = Mailbox.objects.get_or_create(name="bench", uri="")
print(json.dumps({"ready": len(corpus)}), flush=True)
for line in sys.stdin:
    MessageAttachment.objects.all().delete()
    Message.objects.all().delete()
    stored = failed = 0
    started = time.perf_counter()
    for raw in corpus:
        try:
            if mailbox.process_incoming_message(email.message_from_bytes(raw)) is not None:
                stored += 1
            else:
                failed += 1
        except Exception:
            failed += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "stored": stored, "failed": failed}), flush=True)
'''


class Peer:
    """django-mailbox in its own virtualenv and process, fed rounds over a pipe."""

    def __init__(self, root: Path, corpus_dir: Path, database: dict[str, Any]) -> None:
        venv = root / "peer-venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
                                 capture_output=True, text=True)
        if install.returncode:
            raise CommandError(f"could not install {DJANGO_MAILBOX} in a throwaway virtualenv:\n"
                               f"{install.stderr[-2000:]}")
        script = root / "peer.py"
        script.write_text(PEER_SCRIPT)
        media = root / "peer-media"
        media.mkdir()
        env = {**os.environ, "PEER_DATABASE": json.dumps(database), "PEER_MEDIA_ROOT": str(media)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # Its warnings about the malformed mail ("Unknown encoding ...") go to a log, not the report.
        self.log = (root / "peer.log").open("w")
        self.process = subprocess.Popen([str(python), str(script), str(corpus_dir)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=root)
        ready = self._answer()
        if "ready" not in ready:
            raise CommandError(f"django-mailbox did not start: {ready}")

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.log.flush()
            log = Path(self.log.name).read_text(errors="replace")[-3000:]
            raise CommandError(f"the django-mailbox process ended unexpectedly:\n{log}")
        return dict(json.loads(line))

    def round(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self._answer()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Command(BaseCommand):
    help = "Ingest the same corpus with Aspire (parse; parse + store) and with django-mailbox, side by side."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each (at least 3)")
        parser.add_argument("--messages", type=int, default=CORPUS_SIZE, help="corpus size (at least 200)")
        parser.add_argument("--seed", type=int, default=14)
        parser.add_argument("--profile", action="store_true", help="print a cProfile of one parse + store round")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rounds"] < 3 or options["messages"] < 200:
            raise CommandError("at least 3 rounds of at least 200 messages")
        database = self.dedicated_database()
        messages = corpus(options["seed"], options["messages"])
        out = self.stdout.write
        out(f"bench_ingest: {len(messages)} messages, {sum(map(len, messages)) / len(messages) / 1024:.1f} KB on "
            f"average, {options['rounds']} interleaved rounds, database postgresql ({database['NAME']}), "
            f"load average {os.getloadavg()[0]:.2f}")
        root = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        peer: Peer | None = None
        peer_database = {**database, "NAME": f"{database['NAME']}_django_mailbox"}
        try:
            corpus_dir = root / "corpus"
            corpus_dir.mkdir()
            for n, raw in enumerate(messages):
                (corpus_dir / f"{n:04d}.eml").write_bytes(raw)
            self.create_database(database, peer_database["NAME"])
            out(f"  installing {DJANGO_MAILBOX} in a throwaway virtualenv ...")
            peer = Peer(root, corpus_dir, {key: peer_database[key] for key in
                                           ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")})
            (root / "spool").mkdir()
            with override_settings(MEDIA_ROOT=root / "media", MAIL_SPOOL_DIR=root / "spool"):
                self.run_rounds(messages, options, peer)
        finally:
            if peer is not None:
                peer.stop()
            for company in Company.objects.filter(name__startswith=COMPANY_PREFIX):
                self.delete_company(company)
            self.drop_database(database, peer_database["NAME"])
            shutil.rmtree(root, ignore_errors=True)

    # -- the rounds ---------------------------------------------------------------------------------

    def run_rounds(self, messages: list[bytes], options: dict[str, Any], peer: Peer) -> None:
        out = self.stdout.write
        connection = self.make_connection(messages)
        rates: dict[str, list[float]] = {"parse": [], "store": [], "peer": []}
        outcomes: dict[str, tuple[int, int]] = {}
        for number in range(options["rounds"]):
            seconds, stored, failed = self.timed(lambda: self.parse_only(messages))
            rates["parse"].append(len(messages) / seconds)
            outcomes["parse"] = (stored, failed)
            self.empty(connection)
            seconds, stored, failed = self.timed(
                lambda number=number: self.parse_and_store(messages, connection, number))  # type: ignore[misc]
            rates["store"].append(len(messages) / seconds)
            outcomes["store"] = (stored, failed)
            answer = peer.round()
            rates["peer"].append(len(messages) / answer["seconds"])
            outcomes["peer"] = (answer["stored"], answer["failed"])
            out(f"  round {number + 1}: Aspire parse {rates['parse'][-1]:.0f}/s, parse + store "
                f"{rates['store'][-1]:.0f}/s, django-mailbox {rates['peer'][-1]:.0f}/s")
        if options["profile"]:
            self.profile(messages, connection)
        labels = {"parse": "Aspire parse alone", "store": "Aspire parse + store",
                  "peer": "django-mailbox ingest"}
        out("")
        for key, label in labels.items():
            values = rates[key]
            stored, failed = outcomes[key]
            out(f"{label:<24} {statistics.median(values):7.0f} messages/s (median; spread {min(values):.0f}-"
                f"{max(values):.0f}) stored without error: {stored} of {len(messages)}"
                + (f", {failed} refused or failed" if failed else ""))
        ratio = statistics.median(rates["store"]) / statistics.median(rates["peer"])
        out(f"Aspire parse + store / django-mailbox ingest: {ratio:.2f}x [target >= {TARGET_RATIO:g}: "
            f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}]")
        self.describe_what_was_stored(connection, len(messages))

    @staticmethod
    def timed(work: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
        started = time.perf_counter()
        stored, failed = work()
        return time.perf_counter() - started, stored, failed

    @staticmethod
    def parse_only(messages: list[bytes]) -> tuple[int, int]:
        parsed = failed = 0
        with tempfile.TemporaryDirectory(dir=settings.MAIL_SPOOL_DIR) as spool:
            for raw in messages:
                try:
                    parse_message(raw, spool_dir=Path(spool), max_attachment_bytes=settings.MAX_ATTACHMENT_BYTES)
                    parsed += 1
                except UnparseableMessage:
                    failed += 1
        return parsed, failed

    @staticmethod
    def parse_and_store(messages: list[bytes], connection: MailboxConnection, number: int) -> tuple[int, int]:
        """Capture's own steps for each page, as a run takes it after fetching."""
        counts = RunCounts()
        for start in range(0, len(messages), PAGE):
            with tempfile.TemporaryDirectory(dir=settings.MAIL_SPOOL_DIR) as spool:
                fetched = [
                    captured for n, raw in enumerate(messages[start : start + PAGE], start)
                    if (captured := capture._parse(MessageRef(id=f"round{number}-{n}"), raw, Path(spool), counts))
                ]
                counts.imported += capture._commit_page(connection, fetched)
        return counts.imported, counts.failed

    def profile(self, messages: list[bytes], connection: MailboxConnection) -> None:
        import cProfile
        import io
        import pstats

        self.empty(connection)
        profiler = cProfile.Profile()
        profiler.enable()
        self.parse_and_store(messages, connection, 999)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        self.stdout.write(text.getvalue())

    def describe_what_was_stored(self, connection: MailboxConnection, total: int) -> None:
        activities = Activity.objects.filter(company_id=connection.company_id)
        with_body = activities.exclude(body="").count()
        with_sender = activities.exclude(email__from_address="", email__from_name="").count()
        with_problems = activities.exclude(email__problems="").count()
        self.stdout.write(f"  last Aspire round: {activities.count()} Activities of {total} messages, {with_body} "
                          f"with a body, {with_sender} with a sender, {with_problems} with a note about damage")

    # -- data -----------------------------------------------------------------------------------

    def make_connection(self, messages: list[bytes]) -> MailboxConnection:
        company = Company.objects.create(name=f"{COMPANY_PREFIX}{uuid.uuid4().hex[:8]}")
        user = User.objects.create(email=f"ingest-{company.pk.hex[:8]}@bench.example", company=company,
                                   full_name="Bench ingest", password="!")
        connection = MailboxConnection.objects.create(company=company, user=user, provider="microsoft",
                                                      mailbox_address=user.email, sync_email=True,
                                                      sync_aspire_folder=True)
        # Some senders are contacts of the company, as in real life, so matching does real work.
        with tempfile.TemporaryDirectory() as spool:
            addresses = sorted({address for raw in messages[:80] for address in
                                parse_message(raw, spool_dir=Path(spool)).participants()})
        for n, address in enumerate(addresses[::2]):
            contact = Contact.objects.create(company=company, first_name=f"Contact {n}")
            ContactEmail.objects.create(company=company, contact=contact, address=address)
        return connection

    @staticmethod
    def empty(connection: MailboxConnection) -> None:
        Activity.objects.filter(company_id=connection.company_id).delete()
        shutil.rmtree(Path(settings.MEDIA_ROOT) / "attachments", ignore_errors=True)
        Path(settings.MAIL_SPOOL_DIR).mkdir(parents=True, exist_ok=True)

    delete_company = staticmethod(delete_company)

    # -- databases ------------------------------------------------------------------------------

    def dedicated_database(self) -> dict[str, Any]:
        db = connections["default"].settings_dict
        name = str(db["NAME"])
        if "bench" not in name.lower() or not db["ENGINE"].endswith("postgresql"):
            raise CommandError("bench_ingest writes to the configured database and needs a PostgreSQL database "
                               "with 'bench' in its name, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/"
                               "aspire_bench (created if missing)")
        self.create_database(db, name)
        call_command("migrate", interactive=False, verbosity=0)
        for leftover in Company.objects.filter(name__startswith=COMPANY_PREFIX):
            self.delete_company(leftover)  # an earlier run that was interrupted
        return dict(db)

    @staticmethod
    def _maintenance(db: dict[str, Any]) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        params = {"dbname": "postgres", "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"],
                  "port": db["PORT"]}
        return psycopg.connect(make_conninfo(**{k: str(v) for k, v in params.items() if v}), autocommit=True)

    def create_database(self, db: dict[str, Any], name: str) -> None:
        from psycopg import sql

        with self._maintenance(db) as maintenance:
            if not maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, db: dict[str, Any], name: str) -> None:
        from psycopg import sql

        if "bench" not in name or not name.endswith("_django_mailbox"):
            return
        with self._maintenance(db) as maintenance:
            maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
