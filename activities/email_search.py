"""Find any email: what is searched, and how the database matches it.

Each email keeps one searchable text (``EmailMessage.search_text``): its subject, the sender's name
and address, its attachments' names and its body as text. On PostgreSQL the database turns it into
a ``tsvector`` column of its own (a stored generated column, so it is never out of step) with a GIN
index, and a search is ``websearch_to_tsquery``: words anywhere, "quoted phrases", ``-word`` to
leave out, ``or``; it never fails on what a person types. The ``simple`` configuration is used:
mail comes in every language, and names, addresses and file names must match as written, not
stemmed as English. SQLite (the demo) keeps the text and matches each word with LIKE.

Reference: https://www.postgresql.org/docs/current/textsearch-controls.html (websearch_to_tsquery)
Reference: https://www.postgresql.org/docs/current/textsearch-tables.html (a generated tsvector column, GIN)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.db.models import BooleanField, F, Func, Q, Value

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
