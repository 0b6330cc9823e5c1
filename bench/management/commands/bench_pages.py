"""Every page at a real company's size: queries per request and latency at two sizes, and a load run.

``python manage.py bench_pages`` (``make bench-pages``) generates two companies in a database of
its own: a large one (by default 1,000,000 email activities, 50,000 contacts, 500,000 appointments,
a few contacts with 20,000 activities each, 5,000 unmatched emails for one user and 10,000
outbound for another) and the same company an eighth of that size. A database that already holds
both, generated with the same sizes, is reused, so a second run only measures.

It then requests every page through the whole Django stack (middleware, sessions, templates),
each as the person who would open it, and prints the queries per request and the p50 / p95
latency at each size against the targets: the same query count at both sizes, and a p95 under
150 ms at the larger size. Last, a load run: gunicorn on loopback, and Locust with 32 users
opening a realistic mix of pages for a bounded time (target: p95 under 500 ms).

It refuses a database without ``bench`` in its name, SQLite, and a database holding any company it
did not make.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Company, User
from aspire_sync.heap import freeze_start_up_heap
from bench.company_data import CompanyGenerator, Picks, Size
from bench.support import p95
from sandbox.runner import free_port

from .bench_mail import Command as BenchMail

COMPANY_PREFIX = "Bench pages "
MARKER_TABLE = "bench_pages_generated"
GENERATION_VERSION = 1  # bump when the generator makes different data
TARGET_P95_MS = 150.0
TARGET_LOAD_P95_MS = 500.0
LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfile.py"


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # a Picks attribute naming the user who opens it
    path: str
    weight: int = 0  # how often a person opens it, in the load run's mix (0: not in the mix)


@dataclass
class Measured:
    queries: tuple[int, int]
    p50: float
    p95: float
    status: int
    slowest_sql: str


def deep_page(count: int, per_page: int) -> int:
    return max(1, math.ceil(count / per_page))


def pages_for(p: Picks, deep: dict[str, Any]) -> list[Page]:
    q = urllib.parse.quote
    first = timezone.localdate().replace(day=1)
    month = f"start={first.isoformat()}T00:00&end={(first + dt.timedelta(days=31)).isoformat()}T00:00"
    return [
        Page("Contacts", "viewer", "/contacts/", 6),
        Page("Contacts, search by name", "viewer", f"/contacts/?q={q(p.search_name)}", 4),
        Page("Contacts, search by address", "viewer", f"/contacts/?q={q(p.search_address)}", 1),
        Page("Contacts, last page", "viewer", f"/contacts/?page={deep['contacts']}", 1),
        Page("Contact", "viewer", f"/contacts/{p.contact}/", 10),
        Page("Contact with the most activities", "viewer", f"/contacts/{p.heavy_contact}/", 2),
        Page("Contact with the most activities, last page", "viewer",
             f"/contacts/{p.heavy_contact}/?page={deep['heavy_timeline']}", 1),
        Page("Contact with the most activities, last page by key", "viewer",
             f"/contacts/{p.heavy_contact}/?page={deep['heavy_timeline']}&before={deep['heavy_timeline_key']}", 1),
        Page("Properties", "viewer", "/properties/", 2),
        Page("Properties, search", "viewer", f"/properties/?q={q(deep['property_word'])}", 2),
        Page("Property", "viewer", f"/properties/{p.property}/", 5),
        Page("Opportunities, search", "viewer", f"/opportunities/?q={q(deep['opportunity_word'])}", 2),
        Page("Opportunity", "viewer", f"/opportunities/{p.opportunity}/", 3),
        Page("Work tickets, search by number", "viewer", "/work-tickets/?q=1042", 1),
        Page("Work tickets, search by words", "viewer", f"/work-tickets/?q={q(deep['ticket_word'])}", 1),
        Page("Work ticket", "viewer", f"/work-tickets/{p.work_ticket}/", 3),
        Page("Email", "viewer", f"/activities/{p.email}/", 8),
        Page("Email, both choosers searched", "viewer",
             f"/activities/{p.unmatched_email}/?regarding_q={q(deep['property_word'])}"
             f"&contact_q={q(p.search_name)}", 2),
        Page("Regarding chooser", "viewer", f"/activities/regarding-search/?q={q(deep['property_word'])}", 4),
        Page("Contact chooser, by name", "viewer", f"/activities/contact-search/?q={q(deep['person'])}", 4),
        Page("Contact chooser, by address", "viewer", f"/activities/contact-search/?q={q(p.search_address)}", 1),
        Page("Unmatched mail", "unmatched_user", "/activities/unmatched/", 3),
        Page("Unmatched mail, last page", "unmatched_user", f"/activities/unmatched/?page={deep['unmatched']}", 1),
        Page("Outbox", "outbox_user", "/mail/outbox/", 2),
        Page("Outbox, last page", "outbox_user", f"/mail/outbox/?page={deep['outbox']}", 1),
        Page("Outbound message", "outbox_user", f"/mail/outbox/{p.outbound}/", 1),
        Page("Write email to a contact", "viewer", f"/mail/compose/contact/{p.contact}/", 2),
        Page("Write email regarding a property", "viewer", f"/mail/compose/property/{p.property}/", 1),
        Page("Settings", "viewer", "/settings/", 1),
        Page("Sync health", "admin", "/sync-health/", 1),
        Page("Calendar, own week", "viewer", "/calendar/", 6),
        Page("Calendar, own month", "viewer", "/calendar/?view=month", 2),
        Page("Calendar, a private colleague's week", "viewer", f"/calendar/?user={p.private_colleague}", 3),
        Page("Calendar, a colleague's day", "viewer", f"/calendar/?view=day&user={p.admin}", 2),
        Page("Calendar feed, a month", "viewer", f"/calendar/feed.json?{month}", 1),
        Page("Appointment", "viewer", f"/calendar/appointments/{p.appointment}/", 2),
        Page("Appointment, a colleague's busy block", "viewer", f"/calendar/appointments/{p.busy_appointment}/", 1),
        Page("New appointment", "viewer", "/calendar/appointments/new/", 1),
        Page("Versions kept after a conflict", "viewer", "/calendar/changes/", 1),
        Page("Admin home", "admin", "/admin/", 1),
        Page("Admin activities", "admin", "/admin/activities/activity/", 1),
        Page("Admin activities, search", "admin", f"/admin/activities/activity/?q={q(deep['subject_word'])}", 1),
        Page("Admin activities, search matching nothing", "admin", "/admin/activities/activity/?q=zqxjv", 1),
        Page("Admin activities, deep page", "admin", f"/admin/activities/activity/?p={deep['admin_activities']}", 0),
        Page("Admin activity", "admin", f"/admin/activities/activity/{p.email}/change/", 1),
        Page("Admin contacts", "admin", "/admin/crm/contact/", 1),
        Page("Admin contacts, search", "admin", f"/admin/crm/contact/?q={q(p.search_name)}", 1),
        Page("Admin contacts, search by address", "admin", f"/admin/crm/contact/?q={q(p.search_address)}", 0),
        Page("Admin contact", "admin", f"/admin/crm/contact/{p.contact}/change/", 0),
        Page("Admin properties, search", "admin", f"/admin/crm/property/?q={q(deep['property_word'])}", 0),
        Page("Admin property", "admin", f"/admin/crm/property/{p.property}/change/", 0),
        Page("Admin opportunities", "admin", "/admin/crm/opportunity/", 0),
        Page("Admin opportunity", "admin", f"/admin/crm/opportunity/{p.opportunity}/change/", 0),
        Page("Admin work tickets, search", "admin", f"/admin/crm/workticket/?q={q(deep['ticket_word'])}", 0),
        Page("Admin work ticket", "admin", f"/admin/crm/workticket/{p.work_ticket}/change/", 0),
        Page("Admin appointments", "admin", "/admin/calendarsync/appointment/", 1),
        Page("Admin appointments, deep page", "admin",
             f"/admin/calendarsync/appointment/?p={deep['admin_appointments']}", 0),
        Page("Admin appointment, a busy block", "admin",
             f"/admin/calendarsync/appointment/{p.busy_appointment}/change/", 0),
        Page("Admin sync runs", "admin", "/admin/accounts/syncrun/", 1),
        Page("Admin sync runs, search by mailbox", "admin", f"/admin/accounts/syncrun/?q={q(deep['mailbox'])}", 0),
        Page("Admin sync runs, deep page", "admin", f"/admin/accounts/syncrun/?p={deep['admin_sync_runs']}", 0),
        Page("Admin mailbox connections", "admin", "/admin/accounts/mailboxconnection/", 0),
        Page("Admin mailbox connections, search", "admin",
             f"/admin/accounts/mailboxconnection/?q={q(deep['mailbox'])}", 0),
        Page("Admin users", "admin", "/admin/accounts/user/", 0),
    ]


def admin_page(count: int) -> int:
    from accounts.admin import ScopedAdmin
    from accounts.paginators import BoundedCountPaginator

    return deep_page(min(count, BoundedCountPaginator.bound), ScopedAdmin.list_per_page)


def _longest_word(text: str) -> str:
    return max((word.strip(".,:!?()").lower() for word in text.split()), key=len)


def deep_pages(p: Picks) -> dict[str, Any]:
    """Where the deep pages of the long lists are, and words to search for, for these picks:
    each search finds at least the picked record, at any size."""
    from accounts.models import SyncRun
    from activities.models import Activity, ActivityContact
    from activities.records import TIMELINE_PAGE_SIZE
    from activities.selectors import TimelineKey, unmatched_emails
    from calendarsync.models import Appointment
    from crm.models import Contact, Opportunity, Property, WorkTicket
    from crm.views import LIST_PAGE_SIZE
    from mailsync.models import OutboundEmail
    from mailsync.views import OUTBOX_PAGE_SIZE

    company_id: Any = User.objects.get(pk=p.viewer).company_id
    contact = Contact.objects.get(pk=p.contact)
    words = {
        "property_word": Property.objects.get(pk=p.property).street.split()[1].lower(),
        "opportunity_word": Opportunity.objects.get(pk=p.opportunity).name.split()[0].lower(),
        "ticket_word": _longest_word(WorkTicket.objects.get(pk=p.work_ticket).description),
        "subject_word": _longest_word(Activity.objects.get(pk=p.email).subject),
        "person": f"{contact.first_name} {contact.last_name[:4]}".lower(),
        # As an admin looks a mailbox up: by its address.
        "mailbox": User.objects.get(pk=p.viewer).email,
    }
    heavy = ActivityContact.objects.filter(contact_id=p.heavy_contact).count()
    last = deep_page(heavy, TIMELINE_PAGE_SIZE)
    # The key the "Older" link of the second-to-last page carries: the last page read by key.
    links = ActivityContact.objects.filter(contact_id=p.heavy_contact).order_by("-occurred_at", "-activity_id")
    before: Any = links.values_list("occurred_at", "activity_id")[(last - 1) * TIMELINE_PAGE_SIZE - 1]
    return {
        "contacts": deep_page(Contact.objects.filter(company_id=company_id).count(), LIST_PAGE_SIZE),
        "heavy_timeline": last,
        "heavy_timeline_key": str(TimelineKey(*before)),
        "unmatched": deep_page(unmatched_emails(User.objects.get(pk=p.unmatched_user)).count(), 25),
        "outbox": deep_page(OutboundEmail.objects.filter(author__pk=p.outbox_user).count(), OUTBOX_PAGE_SIZE),
        # The admin's last reachable page (it counts up to BoundedCountPaginator.bound rows).
        "admin_activities": admin_page(Activity.objects.filter(company_id=company_id).count()),
        "admin_appointments": admin_page(Appointment.objects.filter(company_id=company_id).count()),
        "admin_sync_runs": admin_page(SyncRun.objects.filter(company_id=company_id).count()),
        **words,
    }


class Command(BaseCommand):
    help = "Queries and latency of every page at two company sizes, and a concurrent load run against gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_two_size_arguments(parser, "page", activities_help="everything else scales with it",
                                    explain_help="EXPLAIN ANALYZE of the slowest query of each page over target")
        parser.add_argument("--load-users", type=int, default=32)
        parser.add_argument("--load-seconds", type=int, default=60)
        parser.add_argument("--load-workers", type=int, default=3, help="gunicorn workers")
        parser.add_argument("--skip-load", action="store_true")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        self.use_dedicated_database(options["regenerate"])
        scale = options["activities"] / Size().activities
        large = Size(**{k: max(1, round(v * scale)) if k not in ("heavy_contacts", "users") else v
                        for k, v in Size().as_dict().items()})
        sizes = {"small": large.divided(options["divide"]), "large": large}
        picks = self.companies(sizes, options["seed"])
        self.serve_as_production()
        results: dict[str, dict[str, Measured]] = {}
        page_lists: dict[str, list[Page]] = {}
        for label in sizes:
            page_lists[label] = [page for page in pages_for(picks[label], deep_pages(picks[label]))
                                 if options["only"].lower() in page.name.lower()]
            self.stdout.write(f"Measuring {len(page_lists[label])} pages at the {label} size "
                              f"({options['requests']} requests each) ...")
            results[label] = {page.name: self.measure(page, picks[label], options["requests"])
                              for page in page_lists[label]}
        self.report(sizes, page_lists["large"], results)
        if options["explain"]:
            self.explain(results["large"])
        if not options["skip_load"]:
            self.load_run(page_lists["large"], picks["large"], options)

    # -- what both two-size benches share -------------------------------------------------------

    @staticmethod
    def add_two_size_arguments(parser: CommandParser, what: str, *, activities_help: str, explain_help: str) -> None:
        """The options of a bench that times requests against a large company and a smaller one."""
        parser.add_argument("--activities", type=int, default=Size().activities,
                            help=f"email activities of the large company; {activities_help}")
        parser.add_argument("--divide", type=int, default=8, help="the small company is the large one divided by this")
        parser.add_argument("--requests", type=int, default=30, help=f"timed requests per {what} and size")
        parser.add_argument("--only", default="", help=f"measure only each {what} whose name contains this")
        parser.add_argument("--explain", action="store_true", help=f"print {explain_help}")
        parser.add_argument("--regenerate", action="store_true", help="generate the companies again")

    @staticmethod
    def serve_as_production() -> None:
        """Pages rendered as a production web worker renders them."""
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)  # the manifest production templates use
        freeze_start_up_heap()  # as each web worker does once the app is loaded (aspire_sync.wsgi)

    # -- the database ---------------------------------------------------------------------------

    def use_dedicated_database(self, regenerate: bool) -> None:
        db = connections["default"].settings_dict
        name = Path(str(db["NAME"])).name
        if "bench" not in name.lower() or not db["ENGINE"].endswith("postgresql"):
            raise CommandError(
                f"bench_pages fills the configured database ({name}) with two large companies: point DATABASE_URL "
                "at a PostgreSQL database with 'bench' in its name, e.g. "
                "postgres://postgres@127.0.0.1:5432/aspire_bench_pages (created if missing)."
            )
        if regenerate:
            self.drop_database(db)
        BenchMail.create_postgres_database(db)
        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        migrate_seconds = time.perf_counter() - started
        if migrate_seconds > 5:
            self.stdout.write(f"Migrations took {migrate_seconds:.1f} s on the existing data.")
        foreign = (Company.objects.exclude(name__startswith=COMPANY_PREFIX).count()
                   + User.objects.filter(company__isnull=True).count())
        if foreign:
            raise CommandError(f"{name} holds data bench_pages did not make ({foreign} companies or operators); "
                               "use a database of its own.")
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (label text PRIMARY KEY, params jsonb NOT NULL, "
                           "picks jsonb NOT NULL, seconds double precision NOT NULL, "
                           "generated_at timestamptz NOT NULL DEFAULT now())")

    def drop_database(self, db: dict[str, Any]) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        connections.close_all()
        params = {"dbname": "postgres", "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"],
                  "port": db["PORT"]}
        with psycopg.connect(make_conninfo(**{k: str(v) for k, v in params.items() if v}), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db["NAME"])))

    def companies(self, sizes: dict[str, Size], seed: int) -> dict[str, Picks]:
        """Both companies, generated now unless this database already holds them as asked."""
        wanted = {label: {**size.as_dict(), "seed": seed, "version": GENERATION_VERSION}
                  for label, size in sizes.items()}
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT label, params, picks, seconds, generated_at FROM {MARKER_TABLE}")  # noqa: S608
            # Django reads jsonb as text (it decodes JSON itself).
            stored = {label: (_json(params), _json(picks), seconds, generated_at)
                      for label, params, picks, seconds, generated_at in cursor.fetchall()}
        complete = all(label in stored and stored[label][0] == wanted[label] for label in sizes)
        if complete and Company.objects.filter(name__startswith=COMPANY_PREFIX).count() == len(sizes):
            for label, (_params, _picks, seconds, generated_at) in stored.items():
                self.stdout.write(f"Reusing the {label} company generated {generated_at:%Y-%m-%d %H:%M} "
                                  f"(generation took {seconds:.0f} s).")
            return {label: Picks(**stored[label][1]) for label in sizes}
        if Company.objects.exists() or stored:
            self.stdout.write("The companies in this database were generated differently: starting afresh.")
            self.drop_database(connections["default"].settings_dict)
            self.use_dedicated_database(regenerate=False)
        picks = {}
        for n, (label, size) in enumerate(sizes.items()):
            self.stdout.write(f"Generating the {label} company: " + ", ".join(
                f"{value:,} {key.replace('_', ' ')}" for key, value in size.as_dict().items()))
            started = time.perf_counter()
            generator = CompanyGenerator(name=f"{COMPANY_PREFIX}{label}", size=size, seed=seed + n,
                                         log=self.stdout.write)
            picks[label] = generator.generate()
            with connection.cursor() as cursor:
                # Fresh statistics and visibility maps, as autovacuum keeps them in a running system.
                cursor.execute("VACUUM ANALYZE")
            seconds = time.perf_counter() - started
            self.stdout.write(f"  generated in {seconds:.0f} s")
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {MARKER_TABLE} (label, params, picks, seconds) "  # noqa: S608
                               "VALUES (%s, %s, %s, %s)",
                               [label, json.dumps(wanted[label]), json.dumps(asdict(picks[label])), seconds])
        return picks

    # -- measuring -------------------------------------------------------------------------------

    def client_for(self, user_id: str) -> Client:
        clients = self.__dict__.setdefault("_clients", {})
        if user_id not in clients:
            client = Client()
            client.force_login(User.objects.get(pk=user_id))
            clients[user_id] = client
        return clients[user_id]

    def measure(self, page: Page, picks: Picks, requests: int) -> Measured:
        client = self.client_for(getattr(picks, page.who))
        for _ in range(2):  # warm: the first request of a page compiles its templates
            client.get(page.path)
        timings, counts = [], []
        slowest = (0.0, "")
        status = 0
        for _ in range(requests):
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(page.path)
                timings.append((time.perf_counter() - started) * 1000)
            status = response.status_code
            counts.append(len(captured))
            for query in captured.captured_queries:
                if float(query["time"]) > slowest[0]:
                    slowest = (float(query["time"]), query["sql"])
        return Measured(queries=(min(counts), max(counts)), p50=statistics.median(timings), p95=p95(timings),
                        status=status, slowest_sql=slowest[1])

    def report(self, sizes: dict[str, Size], pages: list[Page], results: dict[str, dict[str, Measured]]) -> None:
        small, large = sizes["small"], sizes["large"]
        self.stdout.write("")
        self.stdout.write(f"Small: {small.activities:,} activities, {small.contacts:,} contacts, "
                          f"{small.appointments:,} appointments. Large: {large.activities:,} activities, "
                          f"{large.contacts:,} contacts, {large.appointments:,} appointments.")
        self.stdout.write(f"Targets: the same queries at both sizes; p95 under {TARGET_P95_MS:.0f} ms "
                          "at the large size.")
        header = f"{'page':<46} {'queries S/L':>12} {'p50 S':>8} {'p95 S':>8} {'p50 L':>8} {'p95 L':>8}  verdict"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        failures = 0
        for page in pages:
            s, lg = results["small"][page.name], results["large"][page.name]
            same = s.queries == lg.queries
            fast = lg.p95 < TARGET_P95_MS
            ok = same and fast and s.status == lg.status == 200
            failures += not ok
            problems = (("queries grow", not same), ("slow", not fast),
                        (f"status {s.status}/{lg.status}", s.status != 200 or lg.status != 200))
            why = [problem for problem, bad in problems if bad]
            queries = f"{_span(s.queries)}/{_span(lg.queries)}"
            self.stdout.write(f"{page.name[:46]:<46} {queries:>12} {s.p50:>8.1f} {s.p95:>8.1f} {lg.p50:>8.1f} "
                              f"{lg.p95:>8.1f}  {'PASS' if ok else 'FAIL (' + ', '.join(why) + ')'}")
        self.stdout.write(f"{len(pages) - failures} of {len(pages)} pages within target.")

    def explain(self, measured: dict[str, Measured]) -> None:
        for name, result in measured.items():
            if result.p95 < TARGET_P95_MS or not result.slowest_sql:
                continue
            self.stdout.write(f"\n== {name}: the slowest query\n{result.slowest_sql}\n")
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + result.slowest_sql)
                self.stdout.write("\n".join(row[0] for row in cursor.fetchall()))

    # -- the load run -------------------------------------------------------------------------------

    def load_run(self, pages: list[Page], picks: Picks, options: dict[str, Any]) -> None:
        mix = [page for page in pages if page.weight]
        users = options["load_users"]
        sessions = {who: self.client_for(getattr(picks, who)).cookies[settings.SESSION_COOKIE_NAME].value
                    for who in {page.who for page in mix}}
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as scratch:
            plan = Path(scratch) / "plan.json"
            plan.write_text(json.dumps({
                "cookie": settings.SESSION_COOKIE_NAME,
                "pages": [{"name": page.name, "path": page.path, "weight": page.weight, "session": sessions[page.who]}
                          for page in mix],
            }))
            env = {**os.environ, "BENCH_PAGES_PLAN": str(plan)}
            self.stdout.write(f"\nLoad run: gunicorn with {options['load_workers']} workers on 127.0.0.1:{port}, "
                              f"Locust with {users} users for {options['load_seconds']} s, each opening one of "
                              f"{len(mix)} pages every 1 to 3 s (weighted as people use them) ...")
            with _gunicorn(port, options["load_workers"], env, Path(scratch)):
                prefix = Path(scratch) / "locust"
                subprocess.run(
                    [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--headless",
                     "--host", f"http://127.0.0.1:{port}", "--users", str(users),
                     "--spawn-rate", str(max(1, users // 4)),
                     "--run-time", f"{options['load_seconds']}s", "--stop-timeout", "10", "--csv", str(prefix),
                     "--only-summary", "--loglevel", "WARNING"],
                    env=env, check=False, timeout=options["load_seconds"] + 120,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                self.load_report(Path(f"{prefix}_stats.csv"))

    def load_report(self, stats: Path) -> None:
        if not stats.exists():
            raise CommandError("Locust wrote no statistics: the load run did not happen.")
        with stats.open() as handle:
            rows = list(csv.DictReader(handle))
        total = next(row for row in rows if row["Name"] == "Aggregated")
        for row in sorted((r for r in rows if r["Name"] != "Aggregated"), key=lambda r: -float(r["95%"] or 0))[:8]:
            self.stdout.write(f"  {row['Name'][:46]:<46} {int(row['Request Count']):>6} requests  "
                              f"p50 {row['50%']:>5} ms  p95 {row['95%']:>5} ms")
        p95 = float(total["95%"])
        failures = int(total["Failure Count"])
        self.stdout.write(
            f"  all pages: {int(total['Request Count']):,} requests, {float(total['Requests/s']):.1f}/s, "
            f"{failures} failed, p50 {total['50%']} ms, p95 {total['95%']} ms, p99 {total['99%']} ms  "
            f"{'PASS' if p95 < TARGET_LOAD_P95_MS and not failures else 'FAIL'} (target p95 under "
            f"{TARGET_LOAD_P95_MS:.0f} ms, no failures)"
        )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _span(counts: tuple[int, int]) -> str:
    return str(counts[0]) if counts[0] == counts[1] else f"{counts[0]}-{counts[1]}"


@contextmanager
def _gunicorn(port: int, workers: int, env: dict[str, str], scratch: Path) -> Iterator[None]:
    log = (scratch / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "aspire_sync.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "60"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2)
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"gunicorn did not start: see {scratch / 'gunicorn.log'}") from exc
                time.sleep(0.5)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
