"""Benchmark the calendar: the week view over a large company, the team view and Find a time at
1,000,000 appointments, and sync throughput against the sandbox.

The week view part builds a company of 200 users with 100,000 appointments in the configured
database, requests colleagues' week views through the whole Django stack (middleware, privacy
selector, template), and prints the query count and latency; it measures once after the first
tenth of the appointments is in and again with all of them, to show the query count does not grow.
The team part builds another company (PostgreSQL only: the rows are made by the database itself,
INSERT ... SELECT over generate_series) with 1,000,000 appointments, and times the team view of
20 colleagues for a day and a week, the same with 5 colleagues (the query count must not change),
and Find a time for 10 colleagues over a week; again at a tenth of the size and at the full size.
With ``--keep-team`` (in a database with ``bench`` in its name) those two companies are kept and a
later run with the same sizes and seed reuses them instead of generating them again.
The sync part starts a sandbox, connects M mailboxes of each provider through their sign-in, fills
each calendar with K events, and times the first (full) sync, an idle run and an incremental run.
Everything else it creates is deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.mailbox import SyncChoices, connect_mailbox
from accounts.models import Company, MailboxConnection, User
from accounts.provider_registry import get_provider
from aspire_sync.heap import freeze_start_up_heap
from bench.support import p95
from calendarsync.models import Appointment
from calendarsync.sync import run_calendar_sync

CHUNK = 5000
KEPT_TEAM_PREFIX = "Bench team kept "
GENERATION_VERSION = 1  # bump when the team generator makes different data


class Viewers:
    """One test client signed in as each viewer in turn: one request handler with its middleware, as
    a web worker has (a client each would load the middleware, and scan the static files, once per
    viewer, and the collector would then walk all of it)."""

    def __init__(self) -> None:
        self.client = Client(SERVER_NAME="localhost")
        self.sessions: dict[uuid.UUID, str] = {}

    def client_for(self, viewer: User) -> Client:
        if viewer.pk in self.sessions:
            self.client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[viewer.pk]
        else:  # a session of its own: signing in over another viewer's would end that one
            self.client.cookies.pop(settings.SESSION_COOKIE_NAME, None)
            self.client.force_login(viewer)
            self.sessions[viewer.pk] = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        return self.client


def _remove(company: Company) -> None:
    """A company ``Command._company`` made, once its appointments are gone."""
    MailboxConnection.objects.filter(company=company).delete()
    User.objects.filter(company=company).delete()
    company.delete()


class Command(BaseCommand):
    help = "Week-view query count and latency for a large company; calendar sync throughput against the sandbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--appointments", type=int, default=100_000)
        parser.add_argument("--requests", type=int, default=200, help="week views to time at each size")
        parser.add_argument("--connections", type=int, default=4, help="M: mailboxes per provider")
        parser.add_argument("--events", type=int, default=250, help="K: events per mailbox")
        parser.add_argument("--skip-sandbox", action="store_true")
        parser.add_argument("--team-appointments", type=int, default=1_000_000)
        parser.add_argument("--team-users", type=int, default=200)
        parser.add_argument("--team-requests", type=int, default=60, help="requests to time per team measurement")
        parser.add_argument("--explain", action="store_true",
                            help="print EXPLAIN (ANALYZE, BUFFERS) of the team view's appointment reads")
        parser.add_argument("--skip-team", action="store_true")
        parser.add_argument("--skip-week", action="store_true", help="skip the week view of 100,000 appointments")
        parser.add_argument("--keep-team", action="store_true",
                            help="keep the team companies for the next run, and reuse those kept by the last one "
                                 "(a database with 'bench' in its name)")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        # Reproducible test data, not secrets.
        self.rng = random.Random(options["seed"])  # noqa: S311
        if isinstance(staticfiles_storage, ManifestFilesMixin):  # production settings (tests run without)
            call_command("collectstatic", interactive=False, verbosity=0)  # the manifest production templates use
        if not options["skip_week"]:
            self.week_view(options["users"], options["appointments"], options["requests"])
        if not options["skip_team"]:
            keep = options["keep_team"]
            if keep and "bench" not in str(db_connection.settings_dict["NAME"]):
                raise CommandError("--keep-team keeps a million rows: point DATABASE_URL at a database with 'bench' "
                                   "in its name, e.g. postgres://postgres@127.0.0.1:5432/aspire_bench_calendar")
            self.team_view(options["team_users"], options["team_appointments"], options["team_requests"],
                           explain=options["explain"], keep=keep, seed=options["seed"])
        if not options["skip_sandbox"]:
            self.sandbox_sync(options["connections"], options["events"])

    def _company(self, name: str, users: int, *, person: str, full_name: str, provider: str,
                 zones: tuple[str, ...] = ("America/Chicago",)) -> tuple[Company, list[User]]:
        """A company of ``users`` people (see ``_people``), named ``name`` and a tag."""
        company = Company.objects.create(name=f"{name} {uuid.uuid4().hex[:8]}", time_zone="America/Chicago")
        return company, self._people(company, users, person=person, full_name=full_name, provider=provider,
                                     zones=zones)

    def _people(self, company: Company, users: int, *, person: str, full_name: str, provider: str,
                zones: tuple[str, ...]) -> list[User]:
        """``users`` people of ``company`` (time zones taken in turn from ``zones``), the first half of
        them with a disconnected connection of ``provider``, every other one private and each shared
        with five colleagues. Nobody signs in as them: their passwords are unusable."""
        tag = company.pk.hex[:8]
        people = User.objects.bulk_create([
            User(email=f"{person}{n}-{tag}@bench.example", full_name=f"{full_name} {n}", company=company,
                 time_zone=zones[n % len(zones)], password="!")
            for n in range(users)
        ])
        for n, member in enumerate(people[: users // 2]):
            connection = MailboxConnection.objects.create(
                user=member, company=company, provider=provider, mailbox_address=member.email,
                calendar_privacy="private" if n % 2 else "public", state="disconnected",
            )
            connection.shared_with.set(self.rng.sample(people, 5))
        return people

    # -- the week view ---------------------------------------------------------------------

    def week_view(self, users: int, appointments: int, requests: int) -> None:
        company, people = self._company("Bench", users, person="bench", full_name="Bench User", provider="google")
        try:
            first = appointments // 10
            self.stdout.write(f"Week view: {users} users, one company")
            self._fill(company, people, first)
            self._time_week_views(people, requests, first)
            self._fill(company, people, appointments - first)
            self._time_week_views(people, requests, appointments)
        finally:
            Appointment.objects.filter(company=company).delete()
            _remove(company)

    def _fill(self, company: Company, people: list[User], count: int) -> None:
        now = timezone.now()
        batch: list[Appointment] = []
        for n in range(count):
            owner = people[n % len(people)]
            start = now + dt.timedelta(minutes=15 * self.rng.randint(-35_000, 35_000))  # about two years
            kind = self.rng.random()
            if kind < 0.02:
                day = dt.datetime.combine(start.date(), dt.time(), dt.UTC)
                start, end, all_day = day, day + dt.timedelta(days=self.rng.randint(1, 3)), True
            elif kind < 0.03:
                end, all_day = start + dt.timedelta(days=self.rng.randint(8, 30)), False
            else:
                end, all_day = start + dt.timedelta(minutes=self.rng.choice((30, 60, 90, 120))), False
            batch.append(Appointment(
                company=company, owner=owner, title=f"Visit {n}", location="Site", start=start, end=end,
                all_day=all_day, is_long=end - start > dt.timedelta(days=7), time_zone="America/Chicago",
                origin="provider", provider_event_id="", sensitivity="private" if kind > 0.9 else "normal",
            ))
            if len(batch) == CHUNK:
                Appointment.objects.bulk_create(batch)
                batch = []
        Appointment.objects.bulk_create(batch)
        # Fresh planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) keeps
        # them in a running system; right after a bulk load the planner would guess from none.
        with db_connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Appointment._meta.db_table}")

    def _time_week_views(self, people: list[User], requests: int, held: int) -> None:
        timings: list[float] = []
        queries: list[int] = []
        shown: list[int] = []
        viewers = Viewers()
        today = timezone.now().date()
        for _ in range(requests):
            viewer, owner = self.rng.sample(people, 2)
            client = viewers.client_for(viewer)
            week = today + dt.timedelta(weeks=self.rng.randint(-40, 40))
            db_connection.queries_log.clear()  # the log is bounded; a full one miscounts
            with CaptureQueriesContext(db_connection) as captured:
                started = time.perf_counter()
                response = client.get("/calendar/", {"user": str(owner.pk), "view": "week", "date": week.isoformat()})
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            queries.append(len(captured))
            shown.append(response.content.count(b'<li class="cal-item'))
        self.stdout.write(
            f"  {held:>7,} appointments: week view {min(queries)}-{max(queries)} queries, "
            f"p50 {statistics.median(timings):.1f} ms, p95 {p95(timings):.1f} ms, "
            f"{statistics.mean(shown):.1f} appointments shown on average ({requests} requests)"
        )

    # -- the team view and Find a time --------------------------------------------------------

    def team_view(self, users: int, appointments: int, requests: int, *, explain: bool, keep: bool = False,
                  seed: int = 0) -> None:
        if db_connection.vendor != "postgresql":
            self.stdout.write("Team view: skipped (it generates its rows with PostgreSQL's generate_series)")
            return
        self.stdout.write(f"Team view and Find a time: {users} users, one company, PostgreSQL")
        for held in (appointments // 10, appointments):
            name = f"{KEPT_TEAM_PREFIX}{users} users {held} appointments seed {seed} v{GENERATION_VERSION}"
            company = Company.objects.filter(name=name).first() if keep else None
            if company is not None and Appointment.objects.filter(company=company).count() == held:
                self.stdout.write(f"  reusing the {held:,} appointments kept by an earlier run")
                people = list(User.objects.filter(company=company).order_by("date_joined", "email"))
            else:
                if company is not None:  # an earlier run stopped while generating it
                    self._delete_team(company)
                company = Company.objects.create(name=name if keep else f"Bench team {uuid.uuid4().hex[:8]}",
                                                 time_zone="America/Chicago")
                started = time.perf_counter()
                people = self._team_people(company, users)
                self._generate(company, people, held)
                self.stdout.write(f"  generated {held:,} appointments in {time.perf_counter() - started:.1f} s")
            try:
                self._time_team(people, requests, held, explain=explain and held == appointments)
            finally:
                if not keep:
                    self._delete_team(company)

    def _team_people(self, company: Company, users: int) -> list[User]:
        return self._people(company, users, person="crew", full_name="Crew Member", provider="microsoft",
                            zones=("America/Denver", "America/Chicago", "America/Chicago", "America/Chicago"))

    def _delete_team(self, company: Company) -> None:
        with db_connection.cursor() as cursor:  # a million rows: one statement, not the ORM's collector
            cursor.execute(f"DELETE FROM {Appointment._meta.db_table} WHERE company_id = %s",  # noqa: S608 (model's table)
                           [company.pk])
        _remove(company)

    def _generate(self, company: Company, people: list[User], count: int) -> None:
        """``count`` appointments made by the database: starts on the quarter hour over three years
        around today, mostly 30 minutes to 2 hours, 2% all-day, 1% longer than a week, a tenth
        marked private, a few tentative or shown as free. Every other column gets its model
        default, so a field added later is filled as the application would fill it."""
        made = {
            "id": "gen_random_uuid()", "created_at": "now()", "updated_at": "now()", "company_id": "%(company)s",
            "owner_id": "(%(owners)s::uuid[])[1 + n %% %(users)s]",
            "title": "'Visit ' || n", "location": "'Site'", "time_zone": "'America/Chicago'", "origin": "'provider'",
            "start": "CASE WHEN kind < 0.02 THEN date_trunc('day', start0 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
                     "ELSE start0 END",
            "end": "CASE WHEN kind < 0.02 THEN date_trunc('day', start0 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
                   "+ (1 + floor(extra * 3)::int) * interval '1 day' "
                   "WHEN kind < 0.03 THEN start0 + (8 + floor(extra * 23)::int) * interval '1 day' "
                   "ELSE start0 + (1 + floor(extra * 4)::int) * interval '30 minutes' END",
            "all_day": "kind < 0.02", "is_long": "kind >= 0.02 AND kind < 0.03",
            "sensitivity": "CASE WHEN marks < 0.1 THEN 'private' ELSE 'normal' END",
            "show_as": "CASE WHEN marks > 0.97 THEN 'free' WHEN marks > 0.94 THEN 'tentative' ELSE 'busy' END",
        }
        columns: list[str] = []
        values: list[str] = []
        params: dict[str, Any] = {
            "company": company.pk, "owners": [person.pk for person in people], "users": len(people),
            "count": count, "now": timezone.now(), "seed": self.rng.random() * 2 - 1}
        for model_field in Appointment._meta.concrete_fields:
            column = str(model_field.column)
            columns.append(db_connection.ops.quote_name(column))
            if column in made:
                values.append(made[column])
            else:
                params[column] = model_field.get_db_prep_save(model_field.get_default(), db_connection)
                values.append(f"%({column})s")
        quarters = 3 * 365 * 96
        # Only the model's own table and column names are formatted in; every value is a parameter.
        sql = (f"INSERT INTO {Appointment._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM "  # noqa: S608
               "(SELECT n, random() AS kind, random() AS extra, random() AS marks, "
               f"date_trunc('hour', %(now)s::timestamptz) + (floor(random() * {quarters})::int - {quarters // 2}) "
               "* interval '15 minutes' AS start0 FROM generate_series(1, %(count)s) AS n) AS generated")
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%(seed)s)", params)
            cursor.execute(sql, params)
            cursor.execute(f"ANALYZE {Appointment._meta.db_table}")

    def _time_team(self, people: list[User], requests: int, held: int, *, explain: bool) -> None:
        today = timezone.now().date()
        viewers = Viewers()
        freeze_start_up_heap()  # as each web worker does once the app is loaded (aspire_sync.wsgi)

        def measure(path: str, colleagues: int, view: str) -> tuple[str, str]:
            timings: list[float] = []
            cpu: list[float] = []  # this process's own time: what a busy machine's waiting leaves out
            database: list[float] = []
            queries: list[int] = []
            slowest = (0.0, "")
            for n in range(requests + 2):  # the first two warm the templates
                viewer = self.rng.choice(people)
                client = viewers.client_for(viewer)
                day = today + dt.timedelta(days=self.rng.randint(-300, 300))
                params = {"people": [str(p.pk) for p in self.rng.sample(people, colleagues)], "view": view,
                          "date": day.isoformat(), "minutes": "60"}
                db_connection.queries_log.clear()
                with CaptureQueriesContext(db_connection) as captured:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    response = client.get(path, params)
                    elapsed = (time.perf_counter() - started) * 1000
                    elapsed_cpu = (time.process_time() - started_cpu) * 1000
                assert response.status_code == 200, response.status_code
                if n >= 2:
                    timings.append(elapsed)
                    cpu.append(elapsed_cpu)
                    database.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
                    queries.append(len(captured))
                    for query in captured.captured_queries:
                        if "calendarsync_appointment" in query["sql"] and float(query["time"]) > slowest[0]:
                            slowest = (float(query["time"]), query["sql"])
            figures = (f"{min(queries)}-{max(queries)} queries, p50 {statistics.median(timings):.1f} ms, "
                       f"p95 {p95(timings):.1f} ms (of which in the database p50 {statistics.median(database):.1f} ms; "
                       f"this process's CPU p50 {statistics.median(cpu):.1f} ms)")
            return figures, slowest[1]

        self.stdout.write(f"  {held:>9,} appointments ({requests} requests each):")
        worst_p95 = 0.0
        plans: list[tuple[str, str]] = []
        for label, path, colleagues, view in (
            ("team view, 20 colleagues, day", "/calendar/team/", 20, "day"),
            ("team view, 20 colleagues, week", "/calendar/team/", 20, "week"),
            ("team view, 5 colleagues, week", "/calendar/team/", 5, "week"),
            ("Find a time, 10 colleagues, a week", "/calendar/find-a-time/", 10, ""),
        ):
            figures, sql = measure(path, min(colleagues, len(people)), view)
            self.stdout.write(f"    {label:<36} {figures}")
            if label.startswith("team view, 20"):
                worst_p95 = max(worst_p95, float(figures.split("p95 ", 1)[1].split(" ")[0]))
                plans.append((label, sql))
        self.stdout.write(f"    target: team view of 20 p95 under 150 ms: {'PASS' if worst_p95 < 150 else 'FAIL'} "
                          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        if explain:
            for label, sql in plans:
                self.stdout.write(f"\n  EXPLAIN (ANALYZE, BUFFERS), {label}, the slowest appointment read:")
                with db_connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                    self.stdout.write("\n".join("    " + row[0] for row in cursor.fetchall()))

    # -- sync against the sandbox ------------------------------------------------------------

    def sandbox_sync(self, per_provider: int, events: int) -> None:
        from sandbox.runner import start_sandbox
        from sandbox.signin import ProviderSignIn

        with tempfile.TemporaryDirectory() as ca_dir:
            sandbox = start_sandbox(ca_dir=Path(ca_dir))
            saved = {name: getattr(settings, name) for name in SANDBOX_SETTINGS}
            try:
                self._point_at(sandbox)
                tag = uuid.uuid4().hex[:8]
                company = Company.objects.create(name=f"Bench sync {tag}")
                try:
                    for provider in ("microsoft", "google"):
                        connections = [self._connect(sandbox, ProviderSignIn, company, provider, n, tag)
                                       for n in range(per_provider)]
                        self._run(sandbox, provider, connections, events)
                finally:
                    Appointment.objects.filter(company=company).delete()
                    MailboxConnection.objects.filter(company=company).delete()
                    User.objects.filter(company=company).delete()
                    company.delete()
            finally:
                for name, value in saved.items():
                    setattr(settings, name, value)
                sandbox.stop()

    def _point_at(self, sandbox: Any) -> None:
        base = sandbox.base_url
        values = {
            "PROVIDER_CA_BUNDLE": str(sandbox.ca_path), "OAUTH_REDIRECT_URI": "http://localhost/callback/",
            "MICROSOFT_CLIENT_ID": "aspire-bench", "MICROSOFT_CLIENT_SECRET": "sandbox-secret",
            "MICROSOFT_AUTHORITY": f"{base}/organizations", "MICROSOFT_GRAPH_URL": f"{base}/v1.0",
            "GOOGLE_CLIENT_ID": "aspire-bench.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "sandbox-secret",
            "GOOGLE_AUTH_URI": f"{base}/o/oauth2/v2/auth", "GOOGLE_TOKEN_URI": f"{base}/token",
            "GOOGLE_REVOKE_URI": f"{base}/revoke", "GOOGLE_API_ENDPOINT": f"{base}/",
        }
        for name, value in values.items():
            setattr(settings, name, value)

    def _connect(self, sandbox: Any, signin: Any, company: Company, provider: str, n: int,
                 tag: str) -> MailboxConnection:
        address = f"{provider}{n}-{tag}@bench.example"
        sandbox.control("POST", "/accounts", json={"provider": provider, "email": address})
        user = User.objects.create(email=address, company=company, password="!")
        adapter = get_provider(provider)
        request = adapter.begin_sign_in(state=uuid.uuid4().hex, login_hint=address)
        callback = signin(sandbox, request.url, settings.OAUTH_REDIRECT_URI).sign_in(address)
        grant = adapter.complete_sign_in(flow=request.flow, params=dict(parse_qsl(urlsplit(callback).query)))
        choices = SyncChoices(sync_email=False, sync_calendar=True, sync_aspire_folder=False,
                              calendar_privacy="public", shared_with=(), provider=provider, mailbox_address=address)
        return connect_mailbox(user=user, choices=choices, grant=grant, identity=adapter.identify(grant))

    def _run(self, sandbox: Any, provider: str, connections: list[MailboxConnection], events: int) -> None:
        sandbox.control("POST", "/limits", json={"enabled": False})
        today = timezone.now().date()
        for connection in connections:
            for n in range(events):
                day = today + dt.timedelta(days=n % 300 - 20)
                hour = 7 + n % 10
                sandbox.control("POST", f"/accounts/{provider}/{connection.mailbox_address}/events", json={
                    "subject": f"Job {n}", "location": "Site", "start": f"{day}T{hour:02d}:00:00",
                    "end": f"{day}T{hour:02d}:45:00", "time_zone": "America/Chicago",
                })
        started = time.perf_counter()
        full = [run_calendar_sync(connection_id=c.pk, owner="bench") for c in connections]
        elapsed = time.perf_counter() - started
        stored = Appointment.objects.filter(connection__in=connections).count()
        idle = [run_calendar_sync(connection_id=c.pk, owner="bench") for c in connections]
        for connection in connections:
            listed = sandbox.control("GET", f"/accounts/{provider}/{connection.mailbox_address}/events")
            for event in listed["events"][:10]:
                sandbox.control("PATCH", f"/accounts/{provider}/{connection.mailbox_address}/events/{event['id']}",
                                json={"subject": "Job moved"})
        started = time.perf_counter()
        changed = [run_calendar_sync(connection_id=c.pk, owner="bench") for c in connections]
        changed_elapsed = time.perf_counter() - started
        label = "Microsoft 365" if provider == "microsoft" else "Google"
        self.stdout.write(
            f"Sync, {label}: M={len(connections)} connections x K={events} events, one worker\n"
            f"  full sync: {stored:,} appointments in {elapsed:.2f} s = {stored / elapsed:,.0f} events/s; "
            f"provider requests per run {_requests(full)}\n"
            f"  idle run: provider requests per run {_requests(idle)}\n"
            f"  10 events changed: {changed_elapsed / len(connections) * 1000:.0f} ms per run; "
            f"provider requests per run {_requests(changed)}"
        )


SANDBOX_SETTINGS = (
    "PROVIDER_CA_BUNDLE", "OAUTH_REDIRECT_URI", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET", "MICROSOFT_AUTHORITY",
    "MICROSOFT_GRAPH_URL", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_AUTH_URI", "GOOGLE_TOKEN_URI",
    "GOOGLE_REVOKE_URI", "GOOGLE_API_ENDPOINT",
)


def _requests(runs: list[Any]) -> str:
    counts = sorted({run.provider_requests for run in runs if run is not None})
    return "/".join(str(c) for c in counts) or "-"
