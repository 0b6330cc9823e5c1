"""Counting without reading a whole table."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator


class BoundedCountPaginator(Paginator):
    """Counts at most ``bound`` rows. A list of a million activities says "more than 10,000"
    instead of counting every one of them on every page; its first 100 pages stay reachable, and
    a filter or a search narrows it down from there (templates/admin/pagination.html)."""

    bound = 10_000
    bounded = False

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        # Unordered: the database stops at the bound by whatever path is cheapest.
        counted = self.object_list.order_by()[: self.bound + 1].count()  # type: ignore[attr-defined]
        self.bounded = counted > self.bound
        return min(counted, self.bound)
