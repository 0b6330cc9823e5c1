"""Text search, one way for every list, chooser and admin.

A term matches a row when it is in any of the searched fields, case-insensitively. Each field is
searched on its own and the matches are combined as one set of primary keys (a UNION), so:

- on PostgreSQL each field finds its matches through its own trigram index (the migrations that
  call ``accounts.migration_operations.trigram_index``), whatever the company's size;
- a field across a relation (a contact's ``emails__address``) adds no join to the outer query, so
  no row is repeated and no DISTINCT is needed; one on a related table (a contact's addresses) is
  looked up in that table alone, within ``company_id`` when given;
- a term with an ``@`` in it is an email address (or part of one), looked up in the address
  fields only.

SQLite runs the same queries without the indexes.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

M = TypeVar("M", bound=Model)

# What a search reads of what was typed: longer than any name, address or description searched for.
MAX_SEARCH_CHARS = 200
MAX_SEARCH_WORDS = 8


def text_search(
    queryset: QuerySet[M],
    q: str,
    fields: tuple[str, ...],
    *,
    each_word: bool = False,
    address_fields: tuple[str, ...] = (),
    extra: Q | None = None,
    company_id: Any = None,
) -> QuerySet[M]:
    """Rows of ``queryset`` matching ``q``: as one phrase, or with ``each_word`` every word (in
    any field each). ``extra`` is one more way to match the whole of ``q`` (a ticket's number)."""
    q = without_nul(q).strip()[:MAX_SEARCH_CHARS]
    if not q:
        return queryset
    # Each word is a subquery of its own: a pasted page of 2,000 words made a query PostgreSQL
    # worked on for minutes. The first words narrow enough; the rest are left out.
    terms = search_terms(q)[:MAX_SEARCH_WORDS] if each_word else [q]
    base = queryset.order_by().values("pk")
    for n, term in enumerate(terms):
        searched = address_fields if address_fields and "@" in term else fields
        local = [field for field in searched if "__" not in field]
        conditions = [Q(**{f"{field}__icontains": term}) for field in local]
        if extra is not None and n == 0 and len(terms) == 1:
            conditions.append(extra)
        arms: list[QuerySet[Any]] = [base.filter(reduce(or_, conditions))] if conditions else []
        arms.extend(_related_arm(base, field, term, company_id) for field in searched if "__" in field)
        matching = arms[0].union(*arms[1:]) if len(arms) > 1 else arms[0]
        queryset = queryset.filter(pk__in=matching)
    return queryset


def without_nul(q: str) -> str:
    """A search as typed, without NUL characters: no text holds one, and PostgreSQL refuses them
    in a query's parameters."""
    return q.replace("\x00", "")


def number_in(q: str) -> int | None:
    """The record number a search is (``1041`` or ``#1041``), or None. Only decimal digits count:
    ``str.isdigit`` also takes superscripts such as ``²``, which are no number ``int`` reads."""
    number = q.strip().lstrip("#")
    return int(number) if number.isdecimal() and len(number) < 10 else None


def _related_arm(base: QuerySet[Any], path: str, term: str, company_id: Any) -> QuerySet[Any]:
    """The keys of rows whose related ``path`` holds ``term``. Across a reverse foreign key (a
    contact's addresses) the related table alone is read, giving the keys it points to."""
    name, _, rest = path.partition("__")
    field = base.model._meta.get_field(name)
    if not (field.one_to_many and "__" not in rest):
        return base.filter(**{f"{path}__icontains": term})
    related = field.related_model._default_manager.filter(**{f"{rest}__icontains": term})
    if company_id is not None and any(f.name == "company" for f in field.related_model._meta.fields):
        related = related.filter(company_id=company_id)
    return related.order_by().values(field.field.attname)  # type: ignore[union-attr]


def search_terms(q: str) -> list[str]:
    """Words as the admin splits them: on spaces, with "quoted phrases" kept whole."""
    terms = []
    for bit in smart_split(q):
        if bit[:1] in ('"', "'") and bit[-1:] == bit[:1]:
            bit = unescape_string_literal(bit)
        if bit.strip():
            terms.append(bit.strip())
    return terms


class IndexedSearchAdmin:
    """For a ModelAdmin whose ``search_fields`` reach across a relation: search them as
    :func:`text_search` does (every word in some field), instead of one OR across joins."""

    address_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request: Any, queryset: QuerySet[Any], search_term: str) -> tuple[QuerySet[Any], bool]:
        fields = tuple(self.get_search_fields(request))  # type: ignore[attr-defined]
        if not search_term.strip() or not fields:
            return queryset, False
        company_id = None if request.user.is_superuser else request.user.company_id
        return text_search(queryset, search_term, fields, each_word=True, address_fields=self.address_search_fields,
                           company_id=company_id), False
