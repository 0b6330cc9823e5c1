"""Find any email: what is searched, and how the database matches it.

Each email keeps one searchable text (``EmailMessage.search_text``): its subject, the sender's name
and address, its attachments' names and its body as text. On PostgreSQL the database turns it into
a ``tsvector`` column of its own (a stored generated column, so it is never out of step) with a GIN
index, and a search is ``websearch_to_tsquery``: words anywhere, "quoted phrases", ``-word`` to
leave out, ``or``; it never fails on what a person types. The ``simple`` configuration is used:
mail comes in every language, and names, addresses and file names must match as written, not
stemmed as English. SQLite (the demo) keeps the text and matches each word with LIKE.

At a million emails a search reads the email rows alone, newest first, a date range at a time
(``recent_first``): each email row carries its activity's time (``EmailMessage.occurred_at``, kept
by the database) with an index on (company, time), so PostgreSQL either walks that index for a
common word or intersects a rarer word's GIN matches with the range's before reading a row (see
migration 0009). A page reads its keys that way and then its cards by id; the count stops at a
bound ("more than ..."), as a mail client's does.

Reference: https://www.postgresql.org/docs/current/textsearch-controls.html (websearch_to_tsquery)
Reference: https://www.postgresql.org/docs/current/textsearch-tables.html (a generated tsvector column, GIN)
Reference: https://www.postgresql.org/docs/current/indexes-bitmap-scans.html (two indexes combined)
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.db import connection, transaction
from django.db.models import BooleanField, F, Func, Q, QuerySet, Value

SEARCH_CONFIG = "simple"
# A tsvector holds at most 1 MB; the start of a long body is what people search for anyway.
BODY_CHARS = 100_000
_PUNCTUATION = re.compile(r"[\W_]+")


class SearchDocument(Func):
    """The generated column's expression: the words of ``search_text`` (PostgreSQL), or the text
    itself where there is no full-text search (SQLite)."""

    output_field = SearchVectorField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, COALESCE(%(expressions)s, ''))"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sql(self, compiler: Any, connection: Any, function: Any = None, template: Any = None,
               arg_joiner: Any = None, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function=function, template=template or "%(expressions)s",
                              arg_joiner=arg_joiner, **extra)


class Matches(Func):
    """``search_vector @@ websearch_to_tsquery('simple', q)``: the GIN index's own operator."""

    output_field = BooleanField()

    def __init__(self, vector: str, query: str) -> None:
        super().__init__(F(vector), Value(query))

    def as_sql(self, compiler: Any, connection: Any, function: Any = None, template: Any = None,
               arg_joiner: Any = None, **extra: Any) -> Any:
        vector_sql, vector_params = compiler.compile(self.source_expressions[0])
        query_sql, query_params = compiler.compile(self.source_expressions[1])
        sql = f"{vector_sql} @@ websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, {query_sql})"
        return sql, (*vector_params, *query_params)


def search_text(*, subject: str, from_name: str, from_address: str, attachment_names: Iterable[str],
                body: str) -> str:
    """The one text an email is found by. Addresses and file names are also written as their
    words ("dana", "example", "com"; "site", "plan", "pdf"), so a part of one finds it."""
    names = [name for name in attachment_names if name]
    pieces = [subject, from_name, from_address, _PUNCTUATION.sub(" ", from_address), *names,
              *(_PUNCTUATION.sub(" ", name) for name in names), body[:BODY_CHARS]]
    return "\n".join(piece.replace("\x00", "") for piece in pieces if piece)


def text_condition(path: str, q: str, *, vendor: str) -> Q:
    """Rows whose email matches ``q`` (``path``: the way from the queried model to the email)."""
    if vendor == "postgresql":
        return Q(Matches(f"{path}search_vector", q))
    # The same reading of what was typed, as substrings: "a phrase", -left out, the rest each a word.
    condition = Q()
    for term in re.findall(r'(-?)"([^"]*)"|(-?)(\S+)', q):
        negate, text = (term[0], term[1]) if term[1] else (term[2], term[3])
        words = [text.strip()] if term[1] else re.findall(r"\w+", text)
        for word in filter(None, words):
            match = Q(**{f"{path}search_text__icontains": word})
            condition &= ~match if negate else match
    return condition


# -- reading matches newest first (PostgreSQL) ----------------------------------------------------

# The date ranges a page widens through, back from where it starts (the page's key, or now): the
# last week, month and year, then everything older. Each is one index-backed part of one query, so
# a search makes the same queries however many emails match and however far back they are; the
# ranges grow so that a rare word costs a few parts, and a common one is done in the first.
WIDENING = (dt.timedelta(days=7), dt.timedelta(days=30), dt.timedelta(days=365))

Key = tuple[dt.datetime, uuid.UUID]


def recent_first(rows: QuerySet[Any], *, start: Key | None, limit: int, offset: int = 0, newer: bool = False,
                 id_field: str = "activity_id") -> QuerySet[Any]:
    """The keys (``occurred_at``, ``id_field``: the activity's time and id) of ``rows`` (email rows,
    a contact's links or activities) after ``start``, older ones first (newer ones with ``newer``),
    at most ``limit`` after skipping ``offset``: one ``UNION ALL`` of the widening date ranges,
    each ordered and limited on its own index.

    PostgreSQL runs a plain (not parallel) Append's parts one after the other and stops as soon as
    the outer LIMIT has its rows, so a page filled from the last month never reads the older parts;
    its planner relies on the same order for ordered scans of partitions. ``search_session`` turns
    parallel plans off, and the caller sorts the few keys it gets in any case."""
    anchor = start[0] if start is not None else _now()
    sign = 1 if newer else -1
    edges = [anchor + sign * width for width in WIDENING]
    parts = []
    for n in range(len(edges) + 1):
        condition = Q()
        if n == 0 and start is not None:
            at, pk = start
            # The first bound lets the index start at the key; the second settles ties.
            tie = Q(occurred_at=at, **{f"{id_field}__{'gt' if newer else 'lt'}": pk})
            condition &= (Q(occurred_at__gte=at) & (Q(occurred_at__gt=at) | tie) if newer else
                          Q(occurred_at__lte=at) & (Q(occurred_at__lt=at) | tie))
        if n < len(edges):  # this range's far edge
            condition &= Q(occurred_at__lt=edges[n]) if newer else Q(occurred_at__gte=edges[n])
        if n > 0:  # and its near one, where the range before it ended
            condition &= Q(occurred_at__gte=edges[n - 1]) if newer else Q(occurred_at__lt=edges[n - 1])
        order = ("occurred_at", id_field) if newer else ("-occurred_at", f"-{id_field}")
        parts.append(rows.filter(condition).order_by(*order).values_list("occurred_at", id_field)[: offset + limit])
    return parts[0].union(*parts[1:], all=True)[offset: offset + limit]


def _now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


@contextmanager
def search_session() -> Iterator[None]:
    """A transaction whose queries run without parallel workers. A search's queries read a few
    index pages and stop at their LIMIT: starting workers (a Gather over a GIN bitmap of a few rows)
    costs more than the whole query, so they are turned off for these queries alone (``SET LOCAL``
    ends with the transaction), not for the database."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Reference: https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAX-PARALLEL-WORKERS-PER-GATHER
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield
