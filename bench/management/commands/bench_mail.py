"""Benchmark mail capture end to end: real Celery workers, the real adapters, a sandbox of its own.

``python manage.py bench_mail`` starts a sandbox process, connects M mailboxes (Microsoft 365 and
Google in turn) through the providers' sign-in pages, drops N realistic messages into each Aspire
folder, and prints:

- messages per second end to end, from enqueueing one ``mailsync.capture_mailbox`` task per
  mailbox to the last run finished (every Activity committed, every message moved to Processed),
  with two ``celery worker --pool solo`` processes on the ``mail`` queue;
- the bare rate of fetching the same MIME from the sandbox (the same adapters, two processes,
  the same fetching as the pipeline, no parsing, no database), and the ratio of the two;
- provider requests per message (from the sandbox's request log, token calls excluded) and
  how many 429s the providers' own limits (on, as in production) answered;
- database queries per message and per page, for a page of 10 and a page of 50;
- the mail requests of an idle run (one per run is the target);
- the workers' peak memory (VmHWM, children included) over the run, and while importing one
  message with a 25 MB attachment.

It refuses to run unless the database is PostgreSQL and its name says it is for benchmarks
(``bench`` in it); it creates and migrates that database when it does not exist. Everything it
creates is in companies named "Bench mail ..." and is deleted at the end; any other company in
the database makes it stop before touching anything.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import select
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.grants import fresh_grant
from accounts.models import Company, MailboxConnection, SyncRun
from accounts.provider_registry import get_provider
from bench.support import (
    Mailbox,
    MailFactory,
    SandboxBench,
    Worker,
    peak_memory_mb,
    reset_peak_memory,
    start_workers,
    tasks_run,
    verdict,
)
from crm.models import Contact, ContactEmail
from mailsync import capture
from mailsync.capture import run_capture
from mailsync.models import EmailSource, OutboundEmail
from mailsync.outbox import queue_email
from mailsync.tasks import capture_mailbox
from providers.base import Grant
from providers.errors import Throttled
from providers.http import retry_delay

WORKERS = 2
LARGE_ATTACHMENT_BYTES = 25 * 1024 * 1024
TARGET_RATE = 100.0
TARGET_RATIO = 0.5
TARGET_MEMORY_MB = 300.0
MAIL_PATHS = ("/v1.0", "/gmail", "/batch")
SEND_PACE = 600  # messages a minute per mailbox, for the send phase
TARGET_SEND_TASKS = 1.5  # send tasks run per message sent
DONE = (SyncRun.Outcome.SUCCEEDED, SyncRun.Outcome.PARTIAL)

# -- the bare fetch (a child process) -------------------------------------------------------------


def grant_to_json(grant: Grant) -> dict[str, Any]:
    return {"data": grant.data, "access_token": grant.access_token, "expires_at": grant.expires_at.isoformat(),
            "scopes": list(grant.scopes)}


def fetch_only(job: dict[str, Any]) -> dict[str, Any]:
    """Fetch one mailbox's messages the way a capture run does (``capture.fetch_mimes``, a page
    at a time) and drop them: no parsing, no database. A throttled fetch stops the page, as in a
    run; after Retry-After it goes on from that message."""
    started = time.time()
    fetched = throttled = size = 0
    provider = get_provider(job["provider"])
    grant = Grant(data=job["grant"]["data"], access_token=job["grant"]["access_token"],
                  expires_at=dt.datetime.fromisoformat(job["grant"]["expires_at"]),
                  scopes=tuple(job["grant"]["scopes"]))
    pending: list[str] = list(job["ids"])
    while pending:
        done = 0
        for _, outcome in capture.fetch_mimes(provider, grant, pending[:capture.PAGE_SIZE]):
            if isinstance(outcome, Throttled):
                throttled += 1
                time.sleep(retry_delay(outcome, 0))
                break
            if isinstance(outcome, Exception):
                raise outcome
            fetched += 1
            size += len(outcome)
            done += 1
        pending = pending[done:]
    return {"started": started, "finished": time.time(), "fetched": fetched, "throttled": throttled, "bytes": size}


# -- the command ----------------------------------------------------------------------------------


class Command(SandboxBench):
    help = "Mail capture throughput end to end with two Celery workers against a sandbox of its own."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connections", type=int, default=4, help="M: mailboxes, Microsoft and Google in turn")
        parser.add_argument("--messages", type=int, default=250, help="N: messages per mailbox")
        parser.add_argument("--providers", default="microsoft,google",
                            help="providers of the mailboxes, taken in turn (default: microsoft,google)")
        parser.add_argument("--sends", type=int, default=40, help="messages sent from each mailbox")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--profile", action="store_true",
                            help="also capture one more mailbox of each provider in this process under cProfile")
        parser.add_argument("--fetch-worker", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["fetch_worker"]:
            self.fetch_worker()
            return
        self.rng = random.Random(options["seed"])  # noqa: S311 - reproducible test data, not secrets
        self.use_dedicated_database()
        self.tag = uuid.uuid4().hex[:8]
        with self.sandboxed("bench-mail-") as (root, environment):
            # No web app runs here to receive provider notifications, so no push channels: they
            # are set up by a task of their own, not by the capture runs measured here.
            local = {"MEDIA_ROOT": str(root / "media"), "MAIL_SPOOL_DIR": str(root / "spool"), "PUSH_BASE_URL": ""}
            # Sending is measured at a pace scaled up from Exchange's 30 a minute (the sandbox's
            # limit is scaled to match), so the send phase takes seconds, not minutes.
            pace = {"MAIL_SEND_PER_MINUTE_MICROSOFT": str(SEND_PACE), "MAIL_SEND_PER_MINUTE_GOOGLE": str(SEND_PACE)}
            self.worker_env = {**os.environ, **environment, **local, **pace}
            self.company = Company.objects.create(name=f"{self.company_prefix}{self.tag}")
            workers: list[Worker] = []
            try:
                with override_settings(**{**environment, **local, "MEDIA_ROOT": Path(local["MEDIA_ROOT"]),
                                          "MAIL_SEND_PER_MINUTE": {"microsoft": SEND_PACE, "google": SEND_PACE},
                                          "MAIL_SPOOL_DIR": Path(local["MAIL_SPOOL_DIR"])}):
                    self.run_benchmark(options, root, workers)
            finally:
                for worker in workers:
                    worker.stop()
                self.delete_company(self.company)

    def fill(self, mailboxes: list[Mailbox], count: int, factory: MailFactory) -> int:
        size = 0
        for mailbox in mailboxes:
            for n in range(count):
                raw = factory.message(n, mailbox.address)
                size += len(raw)
                mailbox.message_ids.append(self.drop(mailbox, raw))
        return size

    def mail_log(self, since: float, addresses: set[str]) -> list[dict[str, Any]]:
        entries = self.sandbox.control("GET", "/requests", params={"since": since})["requests"]
        return [e for e in entries if e["account"] in addresses and e["path"].startswith(MAIL_PATHS)]

    def wait_for_runs(self, connections: list[MailboxConnection], since: dt.datetime,
                      expected_sources: int | None = None, timeout: float = 600) -> dt.datetime:
        """Until each connection has a finished run started after ``since`` and no run is left
        to retry; returns when the last one finished (as the worker recorded it)."""
        ids = [c.pk for c in connections]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = list(SyncRun.objects.filter(connection_id__in=ids, kind=SyncRun.Kind.MAIL, started_at__gte=since)
                        .values_list("connection_id", "outcome", "finished_at", "started_at"))
            latest: dict[uuid.UUID, tuple[str, dt.datetime | None, dt.datetime]] = {}
            for connection_id, outcome, finished, started in runs:
                if connection_id not in latest or started > latest[connection_id][2]:
                    latest[connection_id] = (outcome, finished, started)
            finished_all = len(latest) == len(ids) and all(o in DONE for o, _, _ in latest.values())
            if finished_all and expected_sources is not None:
                finished_all = EmailSource.objects.filter(connection_id__in=ids).count() >= expected_sources
            if finished_all:
                return max(f for _, f, _ in latest.values() if f is not None)
            failed = [o for o, _, _ in latest.values() if o == SyncRun.Outcome.FAILED]
            if failed:
                errors = SyncRun.objects.filter(connection_id__in=ids, outcome=SyncRun.Outcome.FAILED)
                logs = "".join(w.log_path.read_text(errors="replace")[-3000:] for w in self.workers)
                raise CommandError(f"a capture run failed: {[r.error for r in errors]}\n{logs}")
            time.sleep(0.05)
        raise CommandError("the capture runs did not finish in time")

    # -- the benchmark --------------------------------------------------------------------------

    def run_benchmark(self, options: dict[str, Any], root: Path, workers: list[Worker]) -> None:
        out = self.stdout.write
        per_mailbox, count = options["messages"], options["connections"]
        load = os.getloadavg()
        out(f"bench_mail: {count} mailboxes ({options['providers']}) x {per_mailbox} messages, "
            f"{WORKERS} worker processes, "
            f"database {db_connection.vendor} ({db_connection.settings_dict['NAME']}), "
            f"broker {settings.CELERY_BROKER_URL.split('://')[0]}, sandbox limits on, "
            f"load average {load[0]:.2f}")
        contacts = [f"client{n}@customers.example" for n in range(60)]
        for n, address in enumerate(contacts):
            contact = Contact.objects.create(company=self.company, first_name="Client", last_name=str(n))
            ContactEmail.objects.create(company=self.company, contact=contact, address=address)
        factory = MailFactory(self.rng, contacts)
        providers = [p.strip() for p in options["providers"].split(",") if p.strip()]
        if not providers or set(providers) - {"microsoft", "google"}:
            raise CommandError("--providers takes microsoft, google or both")
        mailboxes = [self.connect(providers[n % len(providers)], n) for n in range(count)]
        size = self.fill(mailboxes, per_mailbox, factory)
        total = count * per_mailbox
        out(f"  mail: {total} messages, {size / total / 1024:.1f} KB on average "
            "(plain; HTML with an inline image; some with a PDF)")
        addresses = {m.address for m in mailboxes}

        bare_rate = self.bare_fetch(mailboxes, total)

        workers.extend(start_workers(WORKERS, self.worker_env, root, self.tag, queues="mail,send"))
        self.workers = workers
        pids = [w.process.pid for w in workers]
        since_wall = time.time()
        since = timezone.now()
        started = time.perf_counter()
        for mailbox in mailboxes:
            capture_mailbox.apply_async((str(mailbox.connection.pk), SyncRun.Trigger.MANUAL), queue="mail")
        finished = self.wait_for_runs([m.connection for m in mailboxes], since, expected_sources=total)
        elapsed = (finished - since).total_seconds()
        polled = time.perf_counter() - started
        rate = total / elapsed
        self.check_everything_captured(mailboxes, per_mailbox)
        log = self.mail_log(since_wall, addresses)
        statuses = Counter(str(e["status"]) for e in log)
        operations = Counter(str(e["operation"]) for e in log)
        memory = max(peak_memory_mb(pid) for pid in pids)
        retried = SyncRun.objects.filter(connection__company=self.company, started_at__gte=since,
                                         outcome=SyncRun.Outcome.RETRYING).count()

        out("")
        out(f"End to end ({WORKERS} workers): {total} messages in {elapsed:.2f} s = {rate:.1f} messages/s "
            f"[target >= {TARGET_RATE:.0f}: {verdict(rate >= TARGET_RATE)}]  (seen by polling: {polled:.2f} s)")
        ratio = rate / bare_rate if bare_rate else 0.0
        out(f"Bare fetch ({WORKERS} processes, same adapters, no parsing, no database): {bare_rate:.1f} messages/s; "
            f"end to end / bare = {ratio:.2f} [target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)}]")
        out(f"Provider requests: {len(log)} for {total} messages = {len(log) / total:.3f} per message "
            f"(token calls excluded); by status {dict(sorted(statuses.items()))}; "
            f"429s: {statuses.get('429', 0)}; runs paused for throttling and resumed: {retried}")
        out(f"  by operation: {dict(operations.most_common())}")
        for mailbox in mailboxes:
            runs = list(SyncRun.objects.filter(connection=mailbox.connection, started_at__gte=since)
                        .order_by("started_at").values_list("started_at", "finished_at", "items_imported"))
            first, last = runs[0][0], max(r[1] for r in runs if r[1] is not None)
            throttled = sum(1 for e in log if e["account"] == mailbox.address and e["status"] == 429)
            begin, end = (first - since).total_seconds(), (last - since).total_seconds()
            out(f"  {mailbox.provider:9} {mailbox.address}: {len(runs)} run(s) from +{begin:.2f} s to +{end:.2f} s, "
                f"{per_mailbox / (end - begin):.1f} messages/s while running; 429s: {throttled}")
        if any(m.provider == "google" for m in mailboxes):
            from providers.google.quota import BUDGET, COSTS

            units = COSTS["messages.get"] + (COSTS["messages.list"] + COSTS["messages.batchModify"]) / capture.PAGE_SIZE
            out(f"  Gmail's per-user quota, paced at {BUDGET} units/s and {units:.1f} units a message, allows one "
                f"Google mailbox {BUDGET / units:.1f} messages/s: {per_mailbox * units / BUDGET:.1f} s for "
                f"{per_mailbox}, during which its run holds a worker")
        out(f"Worker peak memory over the run (VmHWM, children included): {memory:.0f} MB")

        send_tasks = self.send_phase(mailboxes, options["sends"], root)
        idle = self.idle_runs(mailboxes)
        large = self.large_attachment(mailboxes, factory, pids)
        queries = self.query_counts(mailboxes, factory)
        if options["profile"]:
            self.profile(mailboxes, factory, per_mailbox)

        out("")
        out("Summary")
        out(f"  end to end >= {TARGET_RATE:.0f} messages/s with {WORKERS} workers: {rate:.1f} "
            f"{verdict(rate >= TARGET_RATE)}")
        out(f"  end to end >= {TARGET_RATIO} x bare fetch: {ratio:.2f} {verdict(ratio >= TARGET_RATIO)}")
        out(f"  send tasks per sent message <= {TARGET_SEND_TASKS}: {send_tasks:.2f} "
            f"{verdict(send_tasks <= TARGET_SEND_TASKS)}")
        out(f"  idle run = 1 mail request: {idle} {verdict(all(n == 1 for n in idle.values()))}")
        out(f"  queries per page do not grow with page size: {queries} "
            f"{verdict(len(set(queries.values())) == 1)}")
        out(f"  worker memory < {TARGET_MEMORY_MB:.0f} MB with a 25 MB attachment: "
            f"{ {k: round(v) for k, v in large.items()} } {verdict(max(large.values()) < TARGET_MEMORY_MB)}")

    def send_phase(self, mailboxes: list[Mailbox], per_mailbox: int, root: Path) -> float:
        """Queue ``per_mailbox`` messages from each mailbox, as clicks on Send would, and time them out
        through the workers; returns the send tasks run per message sent (from the workers' logs)."""
        self.sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": SEND_PACE})
        before = tasks_run(root)["mailsync.send_queue"]
        since_wall = time.time()
        started = time.perf_counter()
        queued = [queue_email(author=mailbox.connection.user, to=f"client{n % 60}@customers.example",
                              subject=f"Statement {n}", body="Your statement is attached.")
                  for n in range(per_mailbox) for mailbox in mailboxes]
        deadline = time.monotonic() + 300
        pending = OutboundEmail.objects.filter(pk__in=[o.pk for o in queued]).exclude(state=OutboundEmail.State.SENT)
        while pending.exists():
            if time.monotonic() > deadline:
                raise CommandError(f"{pending.count()} messages were not sent within 5 minutes")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        tasks = tasks_run(root)["mailsync.send_queue"] - before
        sends = [e for e in self.mail_log(since_wall, {m.address for m in mailboxes})
                 if e["method"] == "POST" and e["path"].endswith(("/sendMail", "/messages/send"))]
        per_message = tasks / len(queued)
        self.stdout.write(
            f"Sending ({SEND_PACE} a minute per mailbox): {len(queued)} messages from {len(mailboxes)} mailboxes in "
            f"{elapsed:.1f} s; {len(sends)} send requests; {tasks} send tasks = {per_message:.2f} per sent message "
            f"[target <= {TARGET_SEND_TASKS}: {verdict(per_message <= TARGET_SEND_TASKS)}]")
        return per_message

    def check_everything_captured(self, mailboxes: list[Mailbox], per_mailbox: int) -> None:
        for mailbox in mailboxes:
            folders = self.sandbox.control("GET", f"/accounts/{mailbox.provider}/{mailbox.address}/mailbox")
            counts = {f["name"]: len(f["messages"]) for f in folders["folders"] if f["name"] in ("Aspire", "Processed")}
            if counts != {"Aspire": 0, "Processed": per_mailbox}:
                raise CommandError(f"{mailbox.address}: folders hold {counts}, not everything in Processed")
            sources = EmailSource.objects.filter(connection=mailbox.connection).count()
            if sources != per_mailbox:
                raise CommandError(f"{mailbox.address}: {sources} messages captured, not {per_mailbox}")

    def bare_fetch(self, mailboxes: list[Mailbox], total: int) -> float:
        """Two child processes fetch every message's MIME. Like the workers with the capture tasks,
        each takes the next mailbox when it is done with one; the rate is over the span from the
        first start to the last end."""
        jobs = [{"provider": m.provider, "grant": grant_to_json(fresh_grant(connection_id=m.connection.pk)),
                 "ids": m.message_ids} for m in mailboxes]
        children = [
            subprocess.Popen([sys.executable, "manage.py", "bench_mail", "--fetch-worker"], cwd=settings.BASE_DIR,
                             env=self.worker_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(WORKERS)
        ]
        results: list[dict[str, Any]] = []
        try:
            for child in children:
                assert child.stdout is not None
                ready, _, _ = select.select([child.stdout], [], [], 60)
                if not ready or child.stdout.readline().strip() != b"ready":
                    raise CommandError("a fetch process did not start")

            def hand_out(child: subprocess.Popen[bytes]) -> bool:
                assert child.stdin is not None
                line = json.dumps(jobs.pop(0)) if jobs else "done"
                child.stdin.write(line.encode() + b"\n")
                child.stdin.flush()
                return line != "done"

            busy = [child for child in children if hand_out(child)]
            while busy:
                readable, _, _ = select.select([c.stdout for c in busy if c.stdout is not None], [], [], 300)
                if not readable:
                    raise CommandError("the bare fetch did not finish")
                for child in [c for c in busy if c.stdout in readable]:
                    assert child.stdout is not None
                    line = child.stdout.readline()
                    if not line:
                        raise CommandError("a fetch process failed")
                    results.append(json.loads(line))
                    if not hand_out(child):
                        busy.remove(child)
        finally:
            for child in children:
                if child.poll() is None and child.stdin is not None:
                    child.stdin.close()
                child.wait(timeout=60)
        fetched = sum(r["fetched"] for r in results)
        span = max(r["finished"] for r in results) - min(r["started"] for r in results)
        if fetched != total:
            raise CommandError(f"the bare fetch got {fetched} of {total} messages")
        self.stdout.write(f"  bare fetch: {fetched} messages, {sum(r['bytes'] for r in results) / 1e6:.1f} MB "
                          f"in {span:.2f} s; 429s: {sum(r['throttled'] for r in results)}")
        return fetched / span

    def fetch_worker(self) -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        for line in sys.stdin:
            if line.strip() == "done":
                break
            sys.stdout.write(json.dumps(fetch_only(json.loads(line))) + "\n")
            sys.stdout.flush()

    def idle_runs(self, mailboxes: list[Mailbox]) -> dict[str, int]:
        """One capture through the workers for an idle mailbox of each provider: its mail requests."""
        result: dict[str, int] = {}
        for provider in ("microsoft", "google"):
            mailbox = next((m for m in mailboxes if m.provider == provider), None)
            if mailbox is None:
                continue
            since_wall, since = time.time(), timezone.now()
            capture_mailbox.apply_async((str(mailbox.connection.pk), SyncRun.Trigger.SCHEDULE), queue="mail")
            self.wait_for_runs([mailbox.connection], since)
            requests = self.mail_log(since_wall, {mailbox.address})
            result[provider] = len(requests)
            self.stdout.write(f"Idle run, {provider}: {len(requests)} mail request(s) "
                              f"{[e['method'] + ' ' + e['path'] for e in requests]} {verdict(len(requests) == 1)}")
        return result

    def large_attachment(self, mailboxes: list[Mailbox], factory: MailFactory, pids: list[int]) -> dict[str, float]:
        """Peak worker memory while one message with a 25 MB attachment is captured (per provider)."""
        result: dict[str, float] = {}
        for provider in ("microsoft", "google"):
            mailbox = next((m for m in mailboxes if m.provider == provider), None)
            if mailbox is None:
                continue
            self.drop(mailbox, factory.large(mailbox.address, LARGE_ATTACHMENT_BYTES))
            reset = all(reset_peak_memory(pid) for pid in pids)
            since = timezone.now()
            capture_mailbox.apply_async((str(mailbox.connection.pk), SyncRun.Trigger.MANUAL), queue="mail")
            self.wait_for_runs([mailbox.connection], since)
            result[provider] = max(peak_memory_mb(pid) for pid in pids)
            note = "" if reset else " (peak since the worker started: clear_refs was refused)"
            self.stdout.write(f"Worker peak memory importing one message with a 25 MB attachment, {provider}: "
                              f"{result[provider]:.0f} MB{note} "
                              f"[target < {TARGET_MEMORY_MB:.0f}: {verdict(result[provider] < TARGET_MEMORY_MB)}]")
        return result

    def query_counts(self, mailboxes: list[Mailbox], factory: MailFactory) -> dict[str, int]:
        """Database queries of an in-process run that captures one page of 10, then one of 50."""
        result: dict[str, int] = {}
        # A page of 50 Gmail fetches costs more than Gmail's per-user second of quota; throttling
        # would split the page across runs, and this counts database queries, not provider limits.
        self.sandbox.control("POST", "/limits", json={"enabled": False})
        for provider in ("microsoft", "google"):
            mailbox = next((m for m in mailboxes if m.provider == provider), None)
            if mailbox is None:
                continue
            for size in (10, 50):
                for n in range(size):
                    self.drop(mailbox, factory.message(10_000 + n, mailbox.address))
                with CaptureQueriesContext(db_connection) as captured:
                    run = run_capture(connection_id=mailbox.connection.pk, owner="bench-queries")
                assert run is not None and run.items_imported == size, run
                result[f"{provider} {size}"] = len(captured)
                self.stdout.write(f"Database queries, {provider}, a run capturing one page of {size}: "
                                  f"{len(captured)} ({len(captured) / size:.2f} per message)")
        self.sandbox.control("POST", "/limits", json={"enabled": True})
        return result

    def profile(self, mailboxes: list[Mailbox], factory: MailFactory, per_mailbox: int) -> None:
        """One more mailbox of each provider captured in this process under cProfile."""
        for provider in ("microsoft", "google"):
            mailbox = self.connect(provider, 100 + len(mailboxes))
            mailboxes.append(mailbox)
            for n in range(per_mailbox):
                self.drop(mailbox, factory.message(20_000 + n, mailbox.address))
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            run = run_capture(connection_id=mailbox.connection.pk, owner="bench-profile")
            profiler.disable()
            elapsed = time.perf_counter() - started
            assert run is not None
            self.stdout.write(f"\nIn-process run, {provider}: {run.items_imported} messages in {elapsed:.2f} s "
                              f"= {run.items_imported / elapsed:.1f} messages/s (under cProfile)")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
            self.stdout.write(text.getvalue())

