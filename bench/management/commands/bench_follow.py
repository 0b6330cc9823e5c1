"""Benchmark following conversations: how soon a reply is in Aspire with push, and what an idle
run costs.

``python manage.py bench_follow`` starts a sandbox of its own, the web app (to receive the
providers' notifications) and a Celery worker (``default`` and ``mail`` queues), connects a
Microsoft 365 and a Google mailbox through the providers' sign-in pages in a company that follows
conversations, drags one email into each Aspire folder, and then, N times per mailbox, has the
customer's reply arrive in the Inbox and waits for its Activity. It prints:

- follow-capture latency with push, from the reply's arrival at the provider to its Activity
  committed (p50, p95, max; target p50 under 5 s);
- the provider requests of an idle run with following on, from the sandbox's request log
  (target: one per watched folder: the Aspire folder, plus Graph's Inbox and Sent Items deltas,
  or Gmail's one history).

The database rules are bench_mail's: PostgreSQL, "bench" in its name, created when missing;
everything it makes is in a company named "Bench follow ..." and deleted at the end.
"""

from __future__ import annotations

import statistics
import time
import uuid
from email.utils import make_msgid
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Company
from accounts.provider_registry import get_provider
from accounts.runs import RunBusy
from activities.models import Activity
from bench.support import Mailbox, SandboxBench, Worker, p95, plain_mail, start_workers, verdict
from crm.models import Contact, ContactEmail
from mailsync.capture import run_capture

CUSTOMER = "dana@customer.example"
TARGET_P50_SECONDS = 5.0
MAIL_PATHS = ("/v1.0", "/gmail", "/batch")
TOPIC = "projects/aspire-bench/topics/gmail"
PUSH_ACCOUNT = "gmail-push@aspire-bench.iam.gserviceaccount.com"


def message(subject: str, *, message_id: str, sender: str, to: str, in_reply_to: str = "") -> bytes:
    return bytes(plain_mail(sender=sender, to=to, subject=subject, message_id=message_id, in_reply_to=in_reply_to,
                            body="Tuesday works for us.\n\nOn Monday, Bench wrote:\n> Can we come Tuesday?\n"))


class Command(SandboxBench):
    help = "Follow-capture latency with push, and the provider requests of an idle run with following on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--replies", type=int, default=10, help="N: replies per mailbox")
        parser.add_argument("--providers", default="microsoft,google")

    def handle(self, *args: Any, **options: Any) -> None:
        self.use_dedicated_database()
        self.tag = uuid.uuid4().hex[:8]
        with self.sandboxed("bench-follow-") as (root, _environment), self.served(
                root, GOOGLE_PUBSUB_TOPIC=TOPIC, GOOGLE_PUBSUB_SERVICE_ACCOUNT=PUSH_ACCOUNT) as env:
            workers: list[Worker] = []
            self.company = Company.objects.create(name=f"{self.company_prefix}{self.tag}",
                                                  follow_conversations_default=True)
            try:
                workers = start_workers(1, env, root, self.tag, queues="default,mail")
                self.run_benchmark(options)
            finally:
                for worker in workers:
                    worker.stop()
                self.delete_company(self.company)

    def run_benchmark(self, options: dict[str, Any]) -> None:
        contact = Contact.objects.create(company=self.company, first_name="Dana", last_name="Customer")
        ContactEmail.objects.create(company=self.company, contact=contact, address=CUSTOMER)
        providers = [p.strip() for p in options["providers"].split(",") if p.strip()]
        mailboxes = [self.connect(provider, n) for n, provider in enumerate(providers)]
        latencies: dict[str, list[float]] = {}
        for mailbox in mailboxes:
            original = make_msgid(domain="customer.example")
            self.drop(mailbox, message("Spring cleanup quote", message_id=original, sender=CUSTOMER,
                                       to=mailbox.address))
            self.capture(mailbox)  # dragged into Aspire: the conversation starts
            inbox = "Inbox" if mailbox.provider == "microsoft" else "INBOX"
            for n in range(options["replies"]):
                reply_id = make_msgid(domain="customer.example")
                arrived = time.monotonic()
                self.drop(mailbox, message(f"Re: Spring cleanup quote ({n})", message_id=reply_id,
                                           sender=CUSTOMER, to=mailbox.address, in_reply_to=original), inbox)
                latencies.setdefault(mailbox.provider, []).append(self.until_captured(reply_id, arrived))
        self.stdout.write("Follow-capture latency with push (reply at the provider -> its Activity committed)")
        everything = [value for values in latencies.values() for value in values]
        for provider, values in [*latencies.items(), ("all", everything)]:
            ordered = sorted(values)
            self.stdout.write(f"  {provider:9} n={len(values):3}  p50 {statistics.median(values):5.2f} s  "
                              f"p95 {p95(values):5.2f} s  max {ordered[-1]:5.2f} s")
        p50 = statistics.median(everything)
        self.stdout.write(f"  target p50 under {TARGET_P50_SECONDS:.0f} s: {verdict(p50 < TARGET_P50_SECONDS)}")
        self.stdout.write("Provider requests of an idle run with following on")
        for mailbox in mailboxes:
            watched = 1 + len(get_provider(mailbox.provider).follow_folders)
            self.capture(mailbox)  # anything pending is taken first
            since = time.time()
            self.capture(mailbox)
            made = [e["path"].split("?")[0] for e in self.sandbox.control(
                "GET", "/requests", params={"since": since, "account": mailbox.address})["requests"]
                if e["path"].startswith(MAIL_PATHS)]
            self.stdout.write(f"  {mailbox.provider:9} {len(made)} request(s) for {watched} watched folder(s): "
                              f"{verdict(len(made) == watched)}  {made}")

    def capture(self, mailbox: Mailbox) -> None:
        # The worker may be running this mailbox just then (a notification): wait for its lease.
        for _ in range(100):
            try:
                run_capture(connection_id=mailbox.connection.pk, owner=f"bench-{uuid.uuid4().hex[:6]}")
                return
            except RunBusy:
                time.sleep(0.1)
        raise CommandError("the mailbox stayed busy")

    @staticmethod
    def until_captured(message_id: str, arrived: float, timeout: float = 120) -> float:
        deadline = arrived + timeout
        while time.monotonic() < deadline:
            if Activity.objects.filter(email__message_id__in=[message_id, message_id.strip("<>")],
                                       origin=Activity.Origin.FOLLOWED).exists():
                return time.monotonic() - arrived
            time.sleep(0.05)
        raise CommandError(f"the reply {message_id} was not captured within {timeout:.0f} s")
