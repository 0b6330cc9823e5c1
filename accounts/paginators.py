"""Pages of long lists, read without reading what comes before them, and counted without reading
a whole table."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Page, Paginator


class KeysFirstPaginator(Paginator):
    """A deep page finds its rows' keys first, from the index alone, then reads only those rows:
    page 2,000 of a list skips 50,000 index entries instead of 50,000 rows with everything
    joined to them. The first page reads its rows directly."""

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count) if self.count else bottom + self.per_page
        if bottom == 0:
            return super().page(number)
        rows = self.object_list
        keys = list(rows.values_list("pk", flat=True)[bottom:top])  # type: ignore[attr-defined]
        by_key = {row.pk: row for row in rows.filter(pk__in=keys)}  # type: ignore[attr-defined]
        return Page([by_key[key] for key in keys if key in by_key], number, self)


class BoundedCountPaginator(KeysFirstPaginator):
    """Counts at most ``bound`` rows. A list of a million activities says "more than 2,000"
    instead of counting every one of them on every page; its first 40 pages (of 50) stay
    reachable, and a filter or a search narrows it down from there (templates/admin/pagination.html).
    A search for a common word stops counting after 2,000 matches too."""

    bound = 2_000
    bounded = False

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        # Unordered: the database stops at the bound by whatever path is cheapest.
        counted = self.object_list.order_by()[: self.bound + 1].count()  # type: ignore[attr-defined]
        self.bounded = counted > self.bound
        return min(counted, self.bound)
