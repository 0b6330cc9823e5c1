"""Find email at a real company's size: latency and queries of a search over 1,000,000 emails.

``python manage.py bench_search`` (``make bench-search``) generates, in a PostgreSQL database of its
own, a company with 1,000,000 email activities (by default) and the same company an eighth of
that size: staff through the ORM, then contacts, their addresses, the emails, their messages (with
the searchable text the application writes), contact links and attachments with one
``INSERT ... SELECT generate_series`` each, so a million emails take a minute or two, not the
page benchmark's Python generator's half hour. A database already holding both, generated with
the same sizes, is reused.

It then runs a mix of searches through the whole Django stack (the "Find email" page, as a
member of the company): a word in nearly every email, a word in a few percent, a word in one
email (an invoice number), a sender's address, a phrase, each word with the filters (origin, a
date range, has an attachment, a contact), and the second page by key. For each it prints the
queries per request at both sizes (target: the same) and the p50 / p95 latency at the larger size
(target: p95 under 100 ms).

It refuses a database without ``bench`` in its name, SQLite, and a database holding a company it
did not make.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any

from django.core.management.base import CommandParser
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Company, User
from bench.company_data import SENTENCES, SERVICES, STREETS
from bench.support import p95, verdict
from crm.models import Contact

from .bench_pages import COMPANY_PREFIX as PAGES_PREFIX
from .bench_pages import MARKER_TABLE, _json
from .bench_pages import Command as BenchPages

# Under the page benchmark's prefix: its database check (nothing but its own companies) holds.
COMPANY_PREFIX = f"{PAGES_PREFIX}search "
GENERATION_VERSION = 2  # bump when the generator makes different data
TARGET_P95_MS = 100.0


@dataclass(frozen=True)
class Search:
    name: str
    params: dict[str, str]
    second_page: bool = False


@dataclass
class Timed:
    queries: tuple[int, int]
    p50: float
    p95: float
    db_p95: float  # the SQL alone: what the index decides, apart from drawing the page
    results: str


@dataclass(frozen=True)
class SearchPicks:
    viewer: str
    contact: str
    heavy_contact: str


def searches(picks: SearchPicks, count: int) -> list[Search]:
    common = {"q": "mulch"}  # a service in a twentieth of the subjects, and a sentence in many bodies
    return [
        Search("a word in many emails", common),
        Search("a word in 1% of emails", {"q": "lot42"}),
        Search("a word in 200 emails", {"q": "ref1234"}),
        Search("a word in one email", {"q": f"n{count // 2}"}),
        Search("a sender's address", {"q": "customer777@domain277.example"}),
        Search("an attachment's name", {"q": f"Proposal {count // 2 - count // 2 % 10}.pdf"}),
        Search("a phrase", {"q": '"updated proposal"'}),
        Search("no match", {"q": "zebra"}),
        Search("common word, sent from Aspire", {**common, "origin": "sent"}),
        Search("common word, one month", {**common, "since": "2025-03-01", "until": "2025-03-31"}),
        Search("common word, with attachment", {**common, "attachment": "on"}),
        Search("common word, one contact", {**common, "contact": picks.contact}),
        Search("a busy contact's email", {"contact": picks.heavy_contact}),
        Search("common word, second page by key", common, second_page=True),
    ]


SERVICES_SQL = "ARRAY[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
STREETS_SQL = "ARRAY[" + ", ".join(f"'{s}'" for s in STREETS) + "]"
SENTENCES_SQL = "ARRAY[" + ", ".join("'" + s.replace("'", "''") + "'" for s in SENTENCES) + "]"


@transaction.atomic  # all of it, or nothing to clean up
def generate_company(name: str, count: int) -> SearchPicks:
    """One company with ``count`` emails, in SQL. Email ``n``: subject "<service> at <street> n<n>",
    body two of the generator's sentences and the words ref<n % 5000> and lot<n % 100>, sender
    customer<n % 20000>@domain<n % 500>.example, a tenth with an attachment "Proposal <n>.pdf", on one
    of count/20 contacts (the first 2% on one busy contact), over five years, 70% captured."""
    company = Company.objects.create(name=name)
    staff = [User.objects.create_user(f"staff{i}@{company.pk.hex[:8]}.bench", None, company=company,
                                      full_name=f"Staff {i}") for i in range(20)]
    contacts = max(10, count // 20)
    params: dict[str, Any] = {"company": str(company.pk), "contacts": contacts, "count": count,
              "staff": [str(user.pk) for user in staff], "busy": max(1, count // 50)}
    # Ids derived from the company and the row number, so links and messages find their rows.
    contact_id = "md5(%(company)s || 'c' || {i})::uuid"
    activity_id = "md5(%(company)s || 'a' || {i})::uuid"
    statements = [
        f"""INSERT INTO crm_contact (id, created_at, first_name, last_name, company_name, phone, company_id)
            SELECT {contact_id.format(i="i")}, now(), 'First' || i, 'Last' || i, '', '', %(company)s::uuid
            FROM generate_series(0, %(contacts)s - 1) AS i""",  # noqa: S608
        f"""INSERT INTO crm_contactemail (id, created_at, address, is_primary, company_id, contact_id)
            SELECT md5(%(company)s || 'e' || i)::uuid, now(), 'contact' || i || '@homes.example', true,
                   %(company)s::uuid, {contact_id.format(i="i")}
            FROM generate_series(0, %(contacts)s - 1) AS i""",  # noqa: S608
        f"""INSERT INTO activities_activity (id, created_at, kind, origin, occurred_at, subject, body, company_id,
                                             owner_id, filed)
            SELECT {activity_id.format(i="n")}, now(), 'email', CASE WHEN n %% 10 < 7 THEN 'captured' ELSE 'sent' END,
                   now() - make_interval(days => n %% 1825, secs => (n::bigint * 7919) %% 86400),
                   ({SERVICES_SQL})[1 + (n / 7) %% {len(SERVICES)}] || ' at '
                       || ({STREETS_SQL})[1 + n %% {len(STREETS)}] || ' n' || n,
                   ({SENTENCES_SQL})[1 + n %% {len(SENTENCES)}] || ' '
                       || ({SENTENCES_SQL})[1 + (n / 3) %% {len(SENTENCES)}]
                       || ' ref' || (n %% 5000) || ' lot' || (n %% 100),
                   %(company)s::uuid, (%(staff)s::uuid[])[1 + n %% 20], true
            FROM generate_series(0, %(count)s - 1) AS n""",  # noqa: S608
        """INSERT INTO activities_emailmessage (activity_id, dedupe_key, message_id, in_reply_to, "references",
                                                from_name, from_address, "to", cc, reply_to, text_body, html_body,
                                                size, problems, company_id, search_text, has_attachment)
           SELECT a.id, '<' || a.id || '@bench>', '<' || a.id || '@bench>', '', '', 'Customer ' || (n %% 20000),
                  'customer' || (n %% 20000) || '@domain' || (n %% 500) || '.example', '[]'::jsonb, '[]'::jsonb,
                  '[]'::jsonb, a.body, '', length(a.body) + 800, '', a.company_id,
                  concat_ws(E'\n', a.subject, 'Customer ' || (n %% 20000),
                            'customer' || (n %% 20000) || '@domain' || (n %% 500) || '.example',
                            'customer' || (n %% 20000) || ' domain' || (n %% 500) || ' example',
                            CASE WHEN n %% 10 = 0 THEN 'Proposal ' || n || '.pdf' || E'\n' || 'Proposal ' || n || ' pdf'
                            END, a.body),
                  false  -- the attachment rows below set it, through the database's own trigger
           FROM generate_series(0, %(count)s - 1) AS n
           JOIN activities_activity AS a ON a.id = md5(%(company)s || 'a' || n)::uuid""",
        f"""INSERT INTO activities_activity_contacts (activity_id, contact_id, occurred_at)
            SELECT a.id, CASE WHEN n < %(busy)s THEN {contact_id.format(i="0")}
                              ELSE {contact_id.format(i="(1 + (n * 31) %% (%(contacts)s - 1))")} END, a.occurred_at
            FROM generate_series(0, %(count)s - 1) AS n
            JOIN activities_activity AS a ON a.id = {activity_id.format(i="n")}""",  # noqa: S608
        f"""INSERT INTO activities_emailattachment (id, filename, content_type, size, content_id, inline, sha256, file,
                                                    too_large, company_id, email_id)
            SELECT md5(%(company)s || 't' || n)::uuid, 'Proposal ' || n || '.pdf', 'application/pdf', 120000, '',
                   false, md5(n::text), '', false, %(company)s::uuid, {activity_id.format(i="n")}
            FROM generate_series(0, %(count)s - 1, 10) AS n""",  # noqa: S608
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)
    return SearchPicks(viewer=str(staff[1].pk), contact=str(Contact.objects.filter(
        company=company, first_name="First5").values_list("pk", flat=True).get()),
        heavy_contact=str(Contact.objects.filter(company=company, first_name="First0").values_list("pk", flat=True)
                          .get()))


class Command(BenchPages):
    help = "Latency and queries of Find email over 1,000,000 email activities, at two company sizes."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_two_size_arguments(parser, "search", activities_help="all of them email",
                                    explain_help="EXPLAIN (ANALYZE, BUFFERS) of each search's queries, large size")

    def handle(self, *args: Any, **options: Any) -> None:
        self.use_dedicated_database(options["regenerate"])
        n = options["activities"]
        sizes = {"search-small": max(1000, n // options["divide"]), "search-large": n}
        picks = {label: self.company(label, count) for label, count in sizes.items()}
        self.serve_as_production()
        results: dict[str, dict[str, Timed]] = {}
        for label, count in sizes.items():
            plan = [search for search in searches(picks[label], count)
                    if options["only"].lower() in search.name.lower()]
            self.stdout.write(f"Searching the {label} company ({count:,} emails, {options['requests']} requests "
                              "each) ...")
            results[label] = {search.name: self.time_search(search, picks[label], options["requests"])
                              for search in plan}
            if label == "search-large" and options["explain"]:
                for search in plan:
                    self.explain_search(search, picks[label])
        self.print_report(sizes, results)

    # -- the companies ----------------------------------------------------------------------------

    def company(self, label: str, count: int) -> SearchPicks:
        name = f"{COMPANY_PREFIX}{label}"
        wanted = {"emails": count, "version": GENERATION_VERSION}
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT params, picks, seconds FROM {MARKER_TABLE} WHERE label = %s", [label])  # noqa: S608
            stored = cursor.fetchone()
        if stored and _json(stored[0]) == wanted and Company.objects.filter(name=name).exists():
            self.stdout.write(f"Reusing the {label} company ({count:,} emails; generation took {stored[2]:.0f} s).")
            return SearchPicks(**_json(stored[1]))
        Company.objects.filter(name=name).delete() if not stored else self._drop_company(name, label)
        self.stdout.write(f"Generating the {label} company: {count:,} emails ...")
        started = time.perf_counter()
        picks = generate_company(name, count)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # fresh statistics, as autovacuum keeps them in a running system
        seconds = time.perf_counter() - started
        self.stdout.write(f"  generated in {seconds:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {MARKER_TABLE} (label, params, picks, seconds) VALUES (%s, %s, %s, %s)",  # noqa: S608
                           [label, json.dumps(wanted), json.dumps(asdict(picks)), seconds])
        return picks

    def _drop_company(self, name: str, label: str) -> None:
        self.stdout.write("The companies in this database were generated differently: starting afresh.")
        self.drop_database(connections["default"].settings_dict)
        self.use_dedicated_database(regenerate=False)

    def search_path(self, search: Search, client: Any) -> str:
        path = "/activities/search/?" + urllib.parse.urlencode(search.params)
        if search.second_page:
            first = client.get(path).content.decode()
            found = re.search(r'href="\?([^"]*before=[^"]*)">Older', first)
            path = "/activities/search/?" + found.group(1).replace("&amp;", "&") if found else path
        return path

    def time_search(self, search: Search, picks: SearchPicks, requests: int) -> Timed:
        client = self.client_for(picks.viewer)
        path = self.search_path(search, client)
        for _ in range(2):
            client.get(path)
        timings, db_timings, counts, results = [], [], [], ""
        for _ in range(requests):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
            counts.append(len(captured))
            db_timings.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
        heading = re.search(r'<h2 id="results-title">([^<]*)</h2>', response.content.decode())
        results = heading.group(1) if heading else "?"

        return Timed(queries=(min(counts), max(counts)), p50=statistics.median(timings), p95=p95(timings),
                     db_p95=p95(db_timings), results=results)

    def explain_search(self, search: Search, picks: SearchPicks) -> None:
        """Each query of the search that reads emails, planned and run as the page runs it (in the
        search's transaction, without parallel workers): the database's own time, apart from
        Python, templates and a loaded machine's scheduling."""
        client = self.client_for(picks.viewer)
        path = self.search_path(search, client)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        self.stdout.write(f"\n== {search.name}")
        for query in captured.captured_queries:
            if "activities_emailmessage" not in query["sql"] and "activities_activity\"" not in query["sql"]:
                continue
            if not query["sql"].lstrip().startswith(("SELECT", "(")):
                continue
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = [row[0] for row in cursor.fetchall()]
            executed = next((line for line in plan if line.startswith("Execution Time")), "")
            self.stdout.write(f"-- {query['sql'][:90]}... {executed}")
            self.stdout.write("\n".join(plan))

    def print_report(self, sizes: dict[str, int], results: dict[str, dict[str, Timed]]) -> None:
        self.stdout.write("")
        self.stdout.write(f"Find email: {sizes['search-small']:,} and {sizes['search-large']:,} email "
                          f"activities (PostgreSQL full-text search, GIN index)")
        self.stdout.write(f"{'search':36} {'results (large)':>24} {'queries s/l':>12} {'p50 ms':>8} "
                          f"{'p95 ms':>8} {'SQL p95':>8}  p95 < {TARGET_P95_MS:.0f} ms, same queries")
        all_ok = True
        p95s = []
        for name, large in results["search-large"].items():
            small = results["search-small"][name]
            same = small.queries == large.queries and large.queries[0] == large.queries[1]
            ok = same and large.p95 < TARGET_P95_MS
            all_ok &= ok
            p95s.append(large.p95)
            queries = f"{_span(small.queries)}/{_span(large.queries)}"
            self.stdout.write(f"{name:36} {large.results:>24} {queries:>12} {large.p50:8.1f} {large.p95:8.1f} "
                              f"{large.db_p95:8.1f}  {verdict(ok)}")
        self.stdout.write(f"Worst p95 {max(p95s):.1f} ms; median of the searches' p95 "
                          f"{statistics.median(p95s):.1f} ms. {verdict(all_ok)}")


def _span(counts: tuple[int, int]) -> str:
    return str(counts[0]) if counts[0] == counts[1] else f"{counts[0]}-{counts[1]}"
