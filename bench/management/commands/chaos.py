"""Chaos: capture and sending under provider faults with real workers killed at random.

``python manage.py chaos`` (``make chaos``) connects M mailboxes (Microsoft 365 and Google in
turn) in a sandbox of its own, drops N messages into each Aspire folder, queues S messages to send
from each, and starts W ``celery worker --pool solo`` processes on the ``default`` and ``mail``
queues. Then, while it ticks the dispatcher and the send sweep as beat would (every second here,
every minute in production, with leases shortened to match), it injects faults into the provider
calls (5xx before and after the provider served the request, 429 with and without Retry-After,
dropped connections before and after serving, slow answers) and SIGKILLs a random worker every
few seconds, starting a new one in its place. When the kills are done it lets the system settle
and counts, against the contract:

- **lost**: a message dropped into Aspire with no Activity, or a queued message never sent;
- **doubled**: a message with more than one Activity or source in its mailbox;
- **sent twice**: a message with more than one copy in the sender's Sent folder;
- **stuck**: a message still in an Aspire folder, or outbound mail not sent when the run ends;
- and the send tasks that ran per sent message.

It needs PostgreSQL and Redis, and refuses any database without ``bench`` in its name or holding
companies it did not make (``bench.support.SandboxBench``).
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections import Counter
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from accounts.models import Company, MailboxConnection
from activities.models import EmailMessage
from aspire_sync.scheduling import dispatch_due
from bench.support import Mailbox, SandboxBench, Worker, plain_mail, start_workers, tasks_run, verdict
from crm.models import Contact, ContactEmail
from mailsync.models import EmailSource, OutboundEmail
from mailsync.outbox import queue_email
from mailsync.sending import sweep

PATHS = {
    "microsoft": {"fetch": r"/\$value$", "list": r"/mailFolders/[^/]+/messages$", "move": r"/\$batch$",
                  "send": r"/sendMail$", "find": r"^/v1.0/me/messages$"},
    "google": {"fetch": r"/users/me/messages/[^/]+$", "list": r"/users/me/messages$", "move": r"batchModify$",
               "send": r"/messages/send$", "find": r"/users/me/messages$"},
}
# Production's waits, shortened so that a run of a few minutes sees every recovery many times.
FAST = {
    "SYNC_RUN_LEASE_SECONDS": "5",
    "MAIL_SEND_LEASE_SECONDS": "8",
    "MAIL_DRAIN_LOST_AFTER_SECONDS": "15",
    "MAIL_SEND_VERIFY_DELAY_SECONDS": "2",
    "MAIL_SEND_PER_MINUTE_MICROSOFT": "120",
    "MAIL_SEND_PER_MINUTE_GOOGLE": "120",
    "PUSH_BASE_URL": "",
}


class Command(SandboxBench):
    help = "Capture and sending under provider faults with real workers killed at random: lost, doubled, stuck."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailboxes", type=int, default=4, help="M: mailboxes, Microsoft and Google in turn")
        parser.add_argument("--messages", type=int, default=120, help="N: messages dropped into each Aspire folder")
        parser.add_argument("--sends", type=int, default=40, help="S: messages queued to send from each mailbox")
        parser.add_argument("--workers", type=int, default=3)
        parser.add_argument("--kills", type=int, default=24, help="workers SIGKILLed during the run")
        parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between kills, on average")
        parser.add_argument("--settle", type=float, default=240.0,
                            help="seconds after the last kill for everything to be captured and sent")
        parser.add_argument("--seed", type=int, default=11)

    def handle(self, *args: Any, **options: Any) -> None:
        self.rng = random.Random(options["seed"])  # noqa: S311 - reproducible chaos, not secrets
        self.use_dedicated_database()
        self.tag = uuid.uuid4().hex[:8]
        with self.sandboxed("chaos-") as (root, environment):
            local = {"MEDIA_ROOT": str(root / "media"), "MAIL_SPOOL_DIR": str(root / "spool"), **FAST}
            self.worker_env = {**os.environ, **environment, **local}
            self.company = Company.objects.create(name=f"{self.company_prefix}{self.tag}")
            self.workers: list[Worker] = []
            overrides: dict[str, Any] = {**environment, "MEDIA_ROOT": Path(local["MEDIA_ROOT"]),
                                         "MAIL_SPOOL_DIR": Path(local["MAIL_SPOOL_DIR"]), "PUSH_BASE_URL": ""}
            overrides.update({name: int(value) for name, value in FAST.items() if value.isdigit()})
            overrides["MAIL_SEND_PER_MINUTE"] = {"microsoft": 120, "google": 120}
            try:
                with override_settings(**overrides):
                    self.run_chaos(options, root)
            finally:
                for worker in self.workers:
                    worker.stop()
                self.delete_company(self.company)

    # -- the run --------------------------------------------------------------------------------

    def run_chaos(self, options: dict[str, Any], root: Path) -> None:
        out = self.stdout.write
        count, per_mailbox, sends = options["mailboxes"], options["messages"], options["sends"]
        out(f"chaos: {count} mailboxes x {per_mailbox} messages to capture and {sends} to send, "
            f"{options['workers']} workers, {options['kills']} kills, seed {options['seed']}")
        contacts = [f"client{n}@customers.example" for n in range(20)]
        for n, address in enumerate(contacts):
            contact = Contact.objects.create(company=self.company, first_name="Client", last_name=str(n))
            ContactEmail.objects.create(company=self.company, contact=contact, address=address)
        self.sandbox.control("POST", "/limits", json={"enabled": True, "graph_sends_per_minute": 600})
        mailboxes = [self.connect(("microsoft", "google")[n % 2], n) for n in range(count)]
        # The work arrives while the workers are being killed, as mail and sends do all day: a wave
        # on every tick, spread over the time the kills take.
        mail_waves = [(mailbox, n) for n in range(per_mailbox) for mailbox in mailboxes]
        send_waves = [(mailbox, n) for n in range(sends) for mailbox in mailboxes]
        ticks = max(1, int(options["kills"] * options["kill_every"] * 0.8))
        mail_per_tick, sends_per_tick = len(mail_waves) // ticks + 1, len(send_waves) // ticks + 1
        dropped: dict[str, set[str]] = {mailbox.address: set() for mailbox in mailboxes}
        queued: list[OutboundEmail] = []

        def feed() -> None:
            for mailbox, n in mail_waves[:mail_per_tick]:
                message_id = make_msgid(idstring=f"chaos{n}", domain="chaos.example")
                self.drop(mailbox, self.message(n, mailbox.address, message_id, contacts))
                dropped[mailbox.address].add(message_id.strip("<>"))
            del mail_waves[:mail_per_tick]
            for mailbox, n in send_waves[:sends_per_tick]:
                queued.append(queue_email(author=mailbox.connection.user, to=self.rng.choice(contacts),
                                          subject=f"Invoice {n} from {mailbox.address}",
                                          body="Your invoice is attached."))
            del send_waves[:sends_per_tick]

        self.workers = start_workers(options["workers"], self.worker_env, root, self.tag, queues="default,mail,send")
        next_worker = options["workers"]
        started = time.monotonic()
        kills = faults = 0
        next_kill = started + self.rng.uniform(0.5, 1.5) * options["kill_every"]
        next_fault = started
        last_kill_at = started
        while True:
            now = time.monotonic()
            if mail_waves or send_waves:
                feed()
            self.tick()
            if kills < options["kills"]:
                if now >= next_fault:
                    self.inject_fault(mailboxes)
                    faults += 1
                    next_fault = now + self.rng.uniform(0.3, 1.2)
                if now >= next_kill:
                    victim = self.rng.choice([w for w in self.workers if w.process.poll() is None])
                    victim.process.send_signal(signal.SIGKILL)
                    victim.process.wait(timeout=10)
                    self.workers.remove(victim)
                    self.workers.extend(start_workers(1, self.worker_env, root, self.tag, queues="default,mail,send",
                                                      first=next_worker))
                    next_worker += 1
                    kills += 1
                    last_kill_at = time.monotonic()
                    next_kill = last_kill_at + self.rng.uniform(0.5, 1.5) * options["kill_every"]
                    if kills == options["kills"]:
                        self.sandbox.control("DELETE", "/faults")
                        out(f"  {kills} workers killed and {faults} faults injected in {last_kill_at - started:.0f} s"
                            f" while {sum(map(len, dropped.values()))} messages arrived and {len(queued)} were "
                            "queued to send; settling")
            elif not (mail_waves or send_waves) and (
                    self.settled(mailboxes) or now - last_kill_at > options["settle"]):
                break
            time.sleep(1.0)
        self.report(mailboxes, dropped, queued, time.monotonic() - started, kills, faults, root)

    def tick(self) -> None:
        """What beat does every minute, and what push notifications do: every connection is due."""
        MailboxConnection.objects.filter(company=self.company, state=MailboxConnection.State.CONNECTED).update(
            next_sync_at=timezone.now())
        dispatch_due(trigger="push")
        sweep()

    def inject_fault(self, mailboxes: list[Mailbox]) -> None:
        mailbox = self.rng.choice(mailboxes)
        operation = self.rng.choice(["fetch", "fetch", "list", "move", "send", "send", "send", "find"])
        path = PATHS[mailbox.provider][operation]
        rng = self.rng
        choices: list[dict[str, Any]] = [
            {"kind": "status", "status": rng.choice([500, 502, 503, 504])},
            {"kind": "status", "status": 429, "retry_after": rng.choice([1, 2])},
            {"kind": "status", "status": 429},
            {"kind": "drop"},
            {"kind": "delay", "seconds": rng.choice([1, 3])},
        ]
        if operation in ("send", "move", "fetch"):
            choices += [{"kind": "drop", "after": True},
                        {"kind": "status", "status": rng.choice([500, 502, 503, 504]), "after": True}]
        fault = {**rng.choice(choices), "path": path, "account": mailbox.address, "count": rng.randint(1, 3)}
        self.sandbox.control("POST", "/faults", json=fault)

    def settled(self, mailboxes: list[Mailbox]) -> bool:
        if OutboundEmail.objects.filter(company=self.company).exclude(state=OutboundEmail.State.SENT).exists():
            return False
        return all(self.folder(mailbox, "Aspire") == 0 for mailbox in mailboxes)

    def folder(self, mailbox: Mailbox, name: str) -> int:
        box = self.sandbox.control("GET", f"/accounts/{mailbox.provider}/{mailbox.address}/mailbox")
        return sum(len(f["messages"]) for f in box["folders"] if name in (f["name"], f.get("id")))

    def sent_copies(self, mailbox: Mailbox) -> Counter[str]:
        box = self.sandbox.control("GET", f"/accounts/{mailbox.provider}/{mailbox.address}/mailbox")
        sent = next(f for f in box["folders"] if f["name"] in ("Sent Items", "SENT") or f.get("id") == "SENT")
        return Counter(str(m["internet_message_id"]) for m in sent["messages"])

    def message(self, n: int, to: str, message_id: str, contacts: list[str]) -> bytes:
        message = plain_mail(sender=f"Client <{self.rng.choice(contacts)}>", to=to, subject=f"Re: estimate #{n}",
                             message_id=message_id,
                             body=f"Message {n}: " + "please confirm the crew for Friday. " * self.rng.randint(2, 40))
        if self.rng.random() < 0.2:
            message.add_attachment(self.rng.randbytes(self.rng.randint(2_000, 60_000)), maintype="application",
                                   subtype="pdf", filename=f"Estimate {n}.pdf")
        return bytes(message)

    # -- the verdict ----------------------------------------------------------------------------

    def report(self, mailboxes: list[Mailbox], dropped: dict[str, set[str]], queued: list[OutboundEmail],
               elapsed: float, kills: int, faults: int, root: Path) -> None:
        out = self.stdout.write
        captured = Counter(message_id.strip("<>") for message_id in
                           EmailMessage.objects.filter(company=self.company).values_list("message_id", flat=True))
        everything = set().union(*dropped.values())
        lost_captures = len(everything - set(captured))
        doubled_activities = sum(n - 1 for message_id, n in captured.items() if n > 1)
        doubled_sources = sum(
            row["n"] - 1 for row in EmailSource.objects.filter(connection__company=self.company)
            .values("connection_id", "activity_id").annotate(n=Count("id")).filter(n__gt=1))
        left_in_aspire = sum(self.folder(mailbox, "Aspire") for mailbox in mailboxes)
        copies: Counter[str] = Counter()
        for mailbox in mailboxes:
            copies.update(self.sent_copies(mailbox))
        outbound = list(OutboundEmail.objects.filter(pk__in=[o.pk for o in queued]).values_list(
            "message_id", "state"))
        sent_twice = sum(1 for message_id, _ in outbound if copies[message_id] > 1)
        never_sent = sum(1 for message_id, _ in outbound if copies[message_id] == 0)
        stuck_outbound = Counter(state for _, state in outbound if state != OutboundEmail.State.SENT)
        tasks = tasks_run(root)
        sent = sum(1 for message_id, _ in outbound if copies[message_id] >= 1)

        out("")
        out(f"After {elapsed:.0f} s, {kills} workers killed, {faults} faults injected:")
        out(f"  capture: {len(everything)} messages; Activities for {len(set(captured) & everything)}")
        out(f"  lost (dropped into Aspire, no Activity):         {lost_captures} {verdict(lost_captures == 0)}")
        out(f"  doubled (a second Activity or source):           {doubled_activities + doubled_sources} "
            f"{verdict(doubled_activities + doubled_sources == 0)}")
        out(f"  stuck in an Aspire folder:                       {left_in_aspire} {verdict(left_in_aspire == 0)}")
        out(f"  sending: {len(outbound)} queued, {sent} in the Sent folders")
        out(f"  sent twice (two copies in Sent):                 {sent_twice} {verdict(sent_twice == 0)}")
        out(f"  lost (queued, never in Sent):                    {never_sent} {verdict(never_sent == 0)}")
        stuck = sum(stuck_outbound.values())
        out(f"  stuck (not sent when the run ended):             {stuck} {dict(stuck_outbound)} {verdict(stuck == 0)}")
        send_tasks = tasks.get("mailsync.send_queue", 0)
        out(f"  send tasks run: {send_tasks}, {send_tasks / max(sent, 1):.2f} per sent message "
            f"(workers killed mid-task are not counted)")
        out(f"  tasks run by name: {dict(tasks.most_common())}")
        if any((lost_captures, doubled_activities, doubled_sources, left_in_aspire, sent_twice, never_sent, stuck)):
            raise CommandError("the sync contract did not hold")

