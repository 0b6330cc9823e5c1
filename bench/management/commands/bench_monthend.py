"""Benchmark month-end: one large company sends a storm of mail while another company's mailbox
captures through push. Does the storm slow the small company's capture?

``python manage.py bench_monthend`` starts a sandbox of its own (every provider call waits
``--latency-ms``), the web app (to receive the providers' notifications) and a worker host shaped
as docs/operations.md says: one worker for the ``default`` and ``mail`` queues, and one for the
``send`` queue, each a pool of threads. Then:

1. **At rest**: the small company's two mailboxes (Microsoft 365 and Google) receive
   ``--captures`` messages in their Aspire folders, one at a time; each latency runs from the
   message arriving at the provider to its Activity existing (push -> web -> a capture run).
2. **The storm**: the large company's ``--senders`` mailboxes queue ``--sends`` messages between
   them, all at once, and the send workers send them at each mailbox's pace; meanwhile the small
   company receives mail as at rest, until the last message is sent.

It prints the small company's capture latency at rest and during the storm (p50, p95, max), the
send throughput, the sends throttled (by the providers: the sandbox's 429 answers to sends; by our
own budgets: sends the shared quotas held back), and the verdict on the target: during the storm
the small company's p95 stays within 2x its p95 at rest, and under 10 s.

The database rules are bench_mail's: PostgreSQL, "bench" in its name, created when missing;
everything it makes is in companies named "Bench monthend ..." and deleted at the end.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
import uuid
from email.utils import make_msgid
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import close_old_connections, transaction

from accounts.models import Company, User
from activities.models import Activity
from bench.support import Mailbox, SandboxBench, Worker, p95, plain_mail, start_workers, verdict
from crm.models import Contact, ContactEmail
from mailsync.models import OutboundEmail
from mailsync.outbox import queue_email
from mailsync.sending import BUDGET_HOLD

CUSTOMER = "dana@customer.example"
TARGET_RATIO = 2.0
TARGET_P95_SECONDS = 10.0
SEND_PATHS = ("sendMail", "/send")  # Graph's sendMail and send (a draft), Gmail's messages/send
QUEUE_CHUNK = 500  # messages queued per transaction: month-end invoices, a batch at a time


def customer_mail(subject: str, *, message_id: str, to: str) -> bytes:
    return bytes(plain_mail(sender=CUSTOMER, to=to, subject=subject, message_id=message_id,
                            body="Could you come by on Tuesday to look at the back lawn?\n"))


class Command(SandboxBench):
    help = "One company's month-end send storm against another company's capture latency with push."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sends", type=int, default=10_000, help="messages the large company queues")
        parser.add_argument(
            "--senders",
            type=int,
            default=16,
            help="the large company's mailboxes sending them (half Microsoft 365, half Google)",
        )
        parser.add_argument(
            "--captures",
            type=int,
            default=20,
            help="messages the small company receives at rest (and at least as many in the storm)",
        )
        parser.add_argument(
            "--capture-every",
            type=float,
            default=2.0,
            help="seconds between the small company's messages during the storm",
        )
        parser.add_argument("--latency-ms", type=float, default=100.0, help="added to every provider call")
        parser.add_argument("--mail-threads", type=int, default=8, help="threads of the default+mail worker")
        parser.add_argument("--send-threads", type=int, default=16, help="threads of the send worker")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sends"] < 1 or options["senders"] < 1 or options["captures"] < 2:
            raise CommandError("--sends and --senders must be at least 1, --captures at least 2")
        self.use_dedicated_database()
        self.tag = uuid.uuid4().hex[:8]
        with self.sandboxed("bench-monthend-") as (root, _environment), self.served(
                root, LOG_LEVEL="INFO", LOG_FORMAT="plain") as env:
            self.clear_budgets()
            workers: list[Worker] = []
            self.companies: list[Company] = []
            try:
                self.workers = workers = [
                    *start_workers(
                        1,
                        env,
                        root,
                        self.tag,
                        queues="default,mail",
                        pool="threads",
                        concurrency=options["mail_threads"],
                    ),
                    *start_workers(
                        1,
                        env,
                        root,
                        self.tag,
                        queues="send",
                        pool="threads",
                        concurrency=options["send_threads"],
                        first=1,
                    ),
                ]
                self.run_benchmark(options)
            finally:
                for worker in workers:
                    worker.stop()
                for company in self.companies:
                    self.delete_company(company)
                self.clear_budgets()

    @staticmethod
    def clear_budgets() -> None:
        """The shared budgets and concurrency slots in the benchmark's Redis start (and end) empty."""
        if settings.REDIS_URL:
            client = redis.Redis.from_url(settings.REDIS_URL)
            for key in itertools.chain(client.scan_iter("quota:*"), client.scan_iter("graph:slots:*")):
                client.delete(key)

    def run_benchmark(self, options: dict[str, Any]) -> None:
        out = self.stdout.write
        small = self.new_company("small")
        contact = Contact.objects.create(company=small, first_name="Dana", last_name="Customer")
        ContactEmail.objects.create(company=small, contact=contact, address=CUSTOMER)
        self.company = small
        receivers = [self.connect("microsoft", 0), self.connect("google", 1)]
        large = self.new_company("large")
        self.company = large
        senders = [self.connect(("microsoft", "google")[n % 2], 100 + n) for n in range(options["senders"])]
        self.sandbox.control("POST", "/latency", json={"latency_ms": options["latency_ms"]})
        out(
            f"bench_monthend: {options['sends']} sends from {len(senders)} mailboxes of one company; "
            f"another company's {len(receivers)} mailboxes capture through push; "
            f"{options['latency_ms']:.0f} ms a provider call; workers: default+mail x{options['mail_threads']} "
            f"threads, send x{options['send_threads']} threads"
        )
        out(f"load average at the start: {os.getloadavg()[0]:.2f}")

        at_rest = self.capture_latencies(receivers, count=options["captures"], every=options["capture_every"])
        storm_started = time.time()
        queued_in = self.queue_storm(senders, options["sends"])
        storm = self.capture_latencies(
            receivers, count=options["captures"], every=options["capture_every"], while_sending=True
        )
        finished = self.wait_for_sends(options["sends"], storm_started)
        load = os.getloadavg()[0]

        out("Small company's capture latency (message at the provider -> its Activity), with push")
        for name, values in (("at rest", at_rest), ("in storm", storm)):
            out(
                f"  {name:9} n={len(values):3}  p50 {statistics.median(values):5.2f} s  "
                f"p95 {p95(values):5.2f} s  max {max(values):5.2f} s"
            )
        rest_p95, storm_p95 = p95(at_rest), p95(storm)
        ok = storm_p95 <= TARGET_RATIO * rest_p95 and storm_p95 < TARGET_P95_SECONDS
        out(
            f"  target: p95 in the storm within {TARGET_RATIO:.0f}x at rest ({TARGET_RATIO * rest_p95:.2f} s) and "
            f"under {TARGET_P95_SECONDS:.0f} s: {storm_p95:.2f} s {verdict(ok)}"
        )
        sent = OutboundEmail.objects.filter(company=large, state=OutboundEmail.State.SENT)
        first_sent, last_sent = (
            sent.order_by(order).values_list("sent_at", flat=True).first() for order in ("sent_at", "-sent_at")
        )
        span = (last_sent - first_sent).total_seconds() if first_sent and last_sent else 0.0
        count = sent.count()
        out(
            f"Send storm: {count} of {options['sends']} sent ({options['sends'] - count} not) in "
            f"{finished:.0f} s from queueing (queued in {queued_in:.1f} s)"
        )
        if span > 0:
            out(
                f"  throughput {count / span:.1f} sends a second ({count / span * 60:.0f} a minute) from the first "
                f"send to the last; the mailboxes' paces allow {self.paced_rate(senders):.1f} a second"
            )
        held = sum(worker.log_path.read_text(errors="replace").count(BUDGET_HOLD) for worker in self.workers)
        out(
            f"  throttled: {self.sends_refused(senders)} sends answered 429 by the providers; "
            f"{held} times a mailbox's sending waited for the shared budgets"
        )
        out(f"  small company's provider answers 429: {self.refused(receivers)}")
        out(f"load average at the end: {load:.2f}")

    def new_company(self, name: str) -> Company:
        company = Company.objects.create(name=f"{self.company_prefix}{name} {self.tag}")
        self.companies.append(company)
        return company

    @staticmethod
    def paced_rate(senders: list[Mailbox]) -> float:
        return sum(settings.MAIL_SEND_PER_MINUTE[mailbox.provider] for mailbox in senders) / 60

    def queue_storm(self, senders: list[Mailbox], sends: int) -> float:
        """Queue the month-end mail, a batch per transaction (its drains asked for on commit)."""
        started = time.monotonic()
        authors = [User.objects.get(pk=mailbox.connection.user_id) for mailbox in senders]
        numbered = zip(range(sends), itertools.cycle(authors), strict=False)
        while chunk := list(itertools.islice(numbered, QUEUE_CHUNK)):
            with transaction.atomic():
                for n, author in chunk:
                    queue_email(
                        author=author,
                        to=f"customer{n}@example.com",
                        subject=f"Invoice {n:05d}",
                        body="Your invoice for this month is attached.\n\nThank you for your business.",
                    )
        return time.monotonic() - started

    def capture_latencies(
        self, receivers: list[Mailbox], *, count: int, every: float, while_sending: bool = False
    ) -> list[float]:
        """One message at a time into each receiver's Aspire folder, in turn, each waited for; in the
        storm, at least ``count`` and on until the last message is sent."""
        latencies: list[float] = []
        for n in itertools.count():
            if n >= count and not (while_sending and self.still_sending()):
                return latencies
            mailbox = receivers[n % len(receivers)]
            message_id = make_msgid(domain="customer.example")
            arrived = time.monotonic()
            self.drop(
                mailbox,
                customer_mail(
                    f"Back lawn ({'storm' if while_sending else 'rest'} {n})", message_id=message_id, to=mailbox.address
                ),
            )
            latencies.append(self.until_captured(message_id, arrived))
            if while_sending:
                time.sleep(max(0.0, every - latencies[-1]))
            close_old_connections()
        return latencies

    def still_sending(self) -> bool:
        return (
            OutboundEmail.objects.filter(company__name__startswith=f"{self.company_prefix}large")
            .exclude(state__in=(OutboundEmail.State.SENT, OutboundEmail.State.FAILED))
            .exists()
        )

    def wait_for_sends(self, sends: int, started: float, timeout: float = 3600) -> float:
        while self.still_sending():
            if time.time() - started > timeout:
                raise CommandError("the sends did not finish within an hour")
            time.sleep(1)
        return time.time() - started

    def until_captured(self, message_id: str, arrived: float, timeout: float = 120) -> float:
        deadline = arrived + timeout
        wanted = [message_id, message_id.strip("<>")]
        while time.monotonic() < deadline:
            if Activity.objects.filter(company=self.companies[0], email__message_id__in=wanted).exists():
                return time.monotonic() - arrived
            time.sleep(0.05)
        raise CommandError(f"the message {message_id} was not captured within {timeout:.0f} s")

    def sends_refused(self, senders: list[Mailbox]) -> int:
        refused = 0
        for mailbox in senders:
            entries = self.sandbox.control("GET", "/requests", params={"account": mailbox.address})["requests"]
            refused += sum(
                1 for entry in entries if entry["status"] == 429 and any(p in entry["path"] for p in SEND_PATHS)
            )
        return refused

    def refused(self, mailboxes: list[Mailbox]) -> int:
        counters = self.sandbox.control("GET", "/counters")["counters"]
        return sum(int(counters.get(mailbox.address, {}).get("status_429", 0)) for mailbox in mailboxes)
