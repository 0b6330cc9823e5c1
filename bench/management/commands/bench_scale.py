"""``make bench-scale``: N connections, all due at once, dispatched and swept by one worker host.

N sandbox mailboxes (Microsoft 365 and Google in turn, over several companies) are connected: two
through the providers' sign-in pages, the rest cloned from those in the sandbox, each with tokens
of its own, and stored as connections the way a sign-in stores them. All are made due, and then:

1. **Dispatch**: the dispatcher (``aspire_sync.scheduling.dispatch_due``, what the beat-fired task
   runs) claims and publishes every one, timed here with no worker consuming, so the broker's queue
   can be measured afterwards: messages and bytes per connection.
2. **Sweep**: W worker processes (one per core of a worker host, a pool of T threads each) start
   and capture every mailbox, each an idle run, against a sandbox that waits ``--latency-ms`` per
   provider call. Wall time is from the first run's start to the last run's end, from the runs'
   records.

Printed beside the targets: dispatch time, sweep wall time, connections per second per core,
provider requests per connection (the sandbox's counters), broker messages and bytes per
connection, database queries per connection (the dispatcher's, counted here, and a sample of idle
runs made in this process), and the workers' peak memory.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import json
import os
import pstats
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.crypto import decrypt_json, encrypt_json
from accounts.models import Company, MailboxConnection, SyncRun, User
from aspire_sync.celery import app
from aspire_sync.scheduling import BATCH, dispatch_due
from bench.support import Mailbox, SandboxBench, Worker, peak_memory_mb, start_workers, tasks_run, verdict
from mailsync.capture import run_capture
from mailsync.models import MailSyncState

SWEEP_TARGETS = {10_000: 600.0, 100_000: 3600.0}  # connections: seconds to sweep them all
DISPATCH_TARGET_SECONDS = 60.0
QUERY_SAMPLE = 20
CHUNK = 1000


class Command(SandboxBench):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connections", type=int, default=10_000, help="N: connections, all due")
        parser.add_argument("--companies", type=int, default=20, help="companies the connections belong to")
        parser.add_argument("--latency-ms", type=float, default=150.0, help="the sandbox's wait per provider call")
        parser.add_argument("--workers", type=int, default=2, help="W: worker processes (the host's cores)")
        parser.add_argument("--threads", type=int, default=16, help="T: threads per worker")
        parser.add_argument("--profile", action="store_true", help="print a profile of the sampled idle runs")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["connections"] < 2 or options["companies"] < 1 or options["workers"] < 1 or options["threads"] < 1:
            raise CommandError("give at least 2 connections, 1 company, 1 worker and 1 thread")
        self.use_dedicated_database()
        self.tag = uuid.uuid4().hex[:8]
        with self.sandboxed("bench-scale-") as (root, environment):
            local = {"MEDIA_ROOT": str(root / "media"), "MAIL_SPOOL_DIR": str(root / "spool"), "PUSH_BASE_URL": ""}
            self.worker_env = {**os.environ, **environment, **local,
                               "CELERY_WORKER_CONCURRENCY": str(options["threads"])}
            self.companies = [Company.objects.create(name=f"{self.company_prefix}{self.tag} {n}")
                              for n in range(options["companies"])]
            self.company = self.companies[0]
            workers: list[Worker] = []
            try:
                with override_settings(**{**environment, **local, "MEDIA_ROOT": Path(local["MEDIA_ROOT"]),
                                          "MAIL_SPOOL_DIR": Path(local["MAIL_SPOOL_DIR"])}):
                    self.run_benchmark(options, root, workers)
            finally:
                for worker in workers:
                    worker.stop()
                self.purge()
                for company in self.companies:
                    self.delete_company(company)

    # -- setting up ---------------------------------------------------------------------------

    def make_connections(self, total: int) -> list[uuid.UUID]:
        """Two mailboxes signed in, the rest cloned from them; returns every connection's id."""
        templates = [self.connect("microsoft", 0), self.connect("google", 1)]
        ids = [t.connection.pk for t in templates]
        started = time.perf_counter()
        for start in range(2, total, CHUNK):
            numbers = range(start, min(start + CHUNK, total))
            for template in templates:
                mine = [n for n in numbers if n % 2 == templates.index(template)]
                if mine:
                    ids.extend(self.clone(template, mine))
        self.stdout.write(f"Set-up: {total} connections ({len(self.companies)} companies, Microsoft 365 and Google "
                          f"in turn), {total - 2} cloned in {time.perf_counter() - started:.1f} s")
        return ids

    def clone(self, template: Mailbox, numbers: list[int]) -> Iterator[uuid.UUID]:
        addresses = [f"{template.provider}{n}-{self.tag}@bench.example" for n in numbers]
        answer = self.sandbox.control("POST", f"/accounts/{template.provider}/{template.address}/clones",
                                      json={"emails": addresses})
        source = MailboxConnection.objects.get(pk=template.connection.pk)
        grant_text = json.dumps(decrypt_json(source.grant_ciphertext))
        state = MailSyncState.objects.get(connection=source)
        state_fields = {f.attname: getattr(state, f.attname) for f in MailSyncState._meta.concrete_fields
                        if not f.primary_key and f.attname not in ("lease_until", "lease_owner")}
        users = User.objects.bulk_create(
            User(email=address, company=self.companies[n % len(self.companies)], full_name=f"Bench {n}", password="!")
            for n, address in zip(numbers, addresses, strict=True))
        connections = []
        for n, user, clone in zip(numbers, users, answer["clones"], strict=True):
            text = grant_text
            for old, new in clone["tokens"].items():
                text = text.replace(old, new)
            connections.append(MailboxConnection(
                company=self.companies[n % len(self.companies)], user=user, provider=source.provider,
                mailbox_address=clone["email"],
                display_name=user.full_name, provider_account_id=clone["id"], state=source.state,
                sync_email=True, sync_aspire_folder=True, sync_calendar=False, calendar_privacy=source.calendar_privacy,
                grant_ciphertext=encrypt_json(json.loads(text)), token_expires_at=source.token_expires_at,
                connected_at=source.connected_at, next_sync_at=source.next_sync_at))
        MailboxConnection.objects.bulk_create(connections)
        MailSyncState.objects.bulk_create(MailSyncState(connection=c, **state_fields) for c in connections)
        return (c.pk for c in connections)

    # -- the broker -----------------------------------------------------------------------------

    def purge(self) -> None:
        with app.connection_for_write() as broker:
            channel: Any = broker.default_channel
            for queue in ("default", "mail", "calendar"):
                channel.queue_purge(queue)

    def queued(self, queue: str) -> tuple[int, int]:
        """Messages waiting in a queue and their bytes, as the broker holds them (Redis lists)."""
        with app.connection_for_read() as broker:
            channel: Any = broker.default_channel
            client = channel.client
            count = int(client.llen(queue))
            size = 0
            for start in range(0, count, 2000):
                size += sum(len(item) for item in client.lrange(queue, start, start + 1999))
        return count, size

    # -- the benchmark --------------------------------------------------------------------------

    def run_benchmark(self, options: dict[str, Any], root: Path, workers: list[Worker]) -> None:
        out = self.stdout.write
        total, cores, threads = options["connections"], options["workers"], options["threads"]
        if not str(app.conf.broker_url).startswith("redis://"):
            raise CommandError("bench-scale measures the broker's queue in Redis: set CELERY_BROKER_URL=redis://...")
        ids = self.make_connections(total)
        self.purge()

        # 1. Dispatch: everything due, claimed and published, nothing consuming yet.
        MailboxConnection.objects.filter(pk__in=ids).update(next_sync_at=timezone.now() - dt.timedelta(minutes=1))
        with CaptureQueriesContext(db_connection) as dispatch_queries:
            started = time.perf_counter()
            # A dispatch task hands a backlog longer than its budget to the next one (which a
            # default-queue worker starts at once); here each next one runs in this process.
            dispatched, dispatch_tasks = 0, 0
            while dispatched < total:
                claimed = dispatch_due()
                dispatched, dispatch_tasks = dispatched + claimed, dispatch_tasks + 1
                if claimed == 0:
                    break
            dispatch_seconds = time.perf_counter() - started
        with app.connection_for_write() as broker:
            channel: Any = broker.default_channel
            channel.queue_purge("default")  # the last hand-on, if any: nothing is left for it
        if dispatched < total:  # more: runs an earlier, interrupted benchmark left, picked up again
            raise CommandError(f"the dispatcher claimed {dispatched} of {total} due connections")
        messages, size = self.queued("mail")
        out(f"Dispatch: {dispatched} due connections claimed and published in {dispatch_seconds:.2f} s "
            f"({dispatch_tasks} dispatch task(s), pages of {BATCH}) "
            f"= {dispatched / dispatch_seconds:.0f} a second [target: {DISPATCH_TARGET_SECONDS:.0f} s for 10,000: "
            f"{verdict(dispatch_seconds * 10_000 / total <= DISPATCH_TARGET_SECONDS)}]; "
            f"{len(dispatch_queries)} queries = {len(dispatch_queries) / total:.3f} per connection")
        out(f"Broker: {messages} messages, {size / 1e6:.1f} MB = {messages / total:.2f} messages and "
            f"{size / messages:.0f} bytes per connection")

        # 2. Sweep: the worker host takes the queue, behind a network of the given latency.
        self.sandbox.control("POST", "/latency", json={"latency_ms": options["latency_ms"]})
        before = self.provider_requests()
        sessions_before = self.database_sessions()
        since = timezone.now()
        workers.extend(start_workers(cores, self.worker_env, root, self.tag, queues="mail", pool="threads",
                                     concurrency=threads))
        runs = SyncRun.objects.filter(connection_id__in=ids, started_at__gte=since)
        deadline = time.monotonic() + max(3600.0, total * 0.5)
        while runs.filter(finished_at__isnull=False).count() < total:
            if time.monotonic() > deadline:
                raise CommandError(f"{runs.filter(finished_at__isnull=False).count()} of {total} runs finished in time")
            for worker in workers:
                if worker.process.poll() is not None:
                    raise CommandError(f"a worker exited: {worker.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(1)
        first_start = min(r for r in runs.values_list("started_at", flat=True))
        last_end = max(r for r in runs.values_list("finished_at", flat=True) if r is not None)
        sweep = (last_end - first_start).total_seconds()
        outcomes = Counter(runs.values_list("outcome", flat=True))
        requests = self.provider_requests() - before
        sessions = self.database_sessions() - sessions_before
        memory = [peak_memory_mb(w.process.pid) for w in workers]
        tasks = tasks_run(root)
        self.sandbox.control("POST", "/latency", json={"latency_ms": 0})

        # 3. Database queries of an idle run, in this process (the workers' are the same code).
        sample = ids[:QUERY_SAMPLE]
        cpu = time.process_time()
        with CaptureQueriesContext(db_connection) as run_queries:
            for connection_id in sample:
                run_capture(connection_id=connection_id, owner="bench-scale-queries")
        cpu_per_run = (time.process_time() - cpu) / len(sample)
        if options["profile"]:
            profiler = cProfile.Profile()
            profiler.enable()
            for connection_id in sample:
                run_capture(connection_id=connection_id, owner="bench-scale-profile")
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
            out(text.getvalue())

        rate = total / sweep
        target = SWEEP_TARGETS.get(total, 3600.0 * total / 100_000)
        hour_rate = 100_000 / 3600
        out(f"Sweep ({cores} workers x {threads} threads, {options['latency_ms']:.0f} ms a provider call): {total} "
            f"idle connections in {sweep:.1f} s = {rate:.1f} a second, {rate / cores:.1f} per second per core "
            f"[target: {target:.0f} s for {total}: {verdict(sweep <= target)}]; outcomes "
            f"{dict(outcomes)}")
        out(f"  100,000 at this rate: {100_000 / rate / 60:.1f} min [target: 60 min on one 2-core host, "
            f"{hour_rate:.1f} a second: {verdict(rate >= hour_rate)}] (extrapolated, not run)"
            if total < 100_000 else f"  100,000 target: {verdict(sweep <= 3600)}")
        out(f"Provider requests: {requests} = {requests / total:.2f} per connection (the sandbox's "
            "per-mailbox counters)")
        out(f"Tasks run by the workers: {dict(tasks)} = {sum(tasks.values()) / total:.2f} per connection "
            "(retries included)")
        out(f"Database queries: dispatch {len(dispatch_queries) / total:.3f} per connection; an idle capture run "
            f"{len(run_queries) / len(sample):.1f} (mean of {len(sample)} in this process)")
        pool = db_connection.settings_dict.get("OPTIONS", {}).get("pool")
        out(f"Database sessions opened during the sweep: {sessions} = {sessions / total:.2f} per connection "
            f"(PostgreSQL's count, this command's included; {'psycopg pool ' + str(pool) if pool else 'no pool'}, "
            f"CONN_MAX_AGE {db_connection.settings_dict['CONN_MAX_AGE']})")
        out(f"CPU per idle run (this process, latency off, no broker): {cpu_per_run * 1000:.1f} ms: at most "
            f"{1 / cpu_per_run:.0f} runs a second per core for the run itself, before Celery's own work")
        out(f"Worker peak memory (VmHWM, each process with its children): "
            f"{', '.join(f'{m:.0f} MB' for m in memory)}; {sum(memory):.0f} MB for the host")
        out("Note: the workers share this machine's cores with PostgreSQL, Redis, the sandbox and this command.")

    def database_sessions(self) -> int:
        """Sessions PostgreSQL has counted on this database so far (pg_stat_database, PostgreSQL 14+;
        a session is counted when it ends, so give the counters a moment to settle)."""
        time.sleep(1.0)
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def provider_requests(self) -> int:
        counters = self.sandbox.control("GET", "/counters")["counters"]
        return sum(int(c.get("requests", 0)) for c in counters.values())
