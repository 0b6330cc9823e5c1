"""Where appointments go on an hour grid: plain functions of times, no database, no Django.

``side_by_side`` gives each timed appointment of one day a lane, so appointments that overlap
stand next to each other instead of on top of each other. ``grid_rows`` turns times into the
grid's rows (a quarter hour each), the units the stylesheet positions by: the pages' strict
Content-Security-Policy allows no inline style, so positions are class names, not style attributes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

ROW = dt.timedelta(minutes=15)
ROWS_PER_DAY = 96
# The stylesheet has classes for this many lanes; more overlapping appointments share the last.
MAX_LANES = 8


@dataclass(frozen=True)
class Placed(Generic[T]):
    """An item with its lane (0-based) among ``lanes`` side by side."""

    item: T
    lane: int
    lanes: int


def side_by_side(items: Sequence[T], span: Callable[[T], tuple[dt.datetime, dt.datetime]]) -> list[Placed[T]]:
    """Lanes for items that overlap in time, in start order (longer first on equal starts).

    Items that overlap one another, directly or through a chain, form a cluster; each takes the
    first lane that is free at its start, and every item of a cluster is drawn as wide as the
    cluster's lane count. Touching is not overlapping: 9-10 and 10-11 share a lane. An item that
    takes no time still occupies its instant, so two at the same minute stand side by side.
    """
    spans = [(span(item), item) for item in items]  # asked once per item, not once per comparison key part
    spans.sort(key=lambda pair: (pair[0][0], pair[0][0] - pair[0][1]))  # by start, longer first
    placed: list[Placed[T]] = []
    cluster: list[tuple[T, int]] = []
    lane_ends: list[dt.datetime] = []  # per lane, when its last item ends
    cluster_end: dt.datetime | None = None

    def close_cluster() -> None:
        lanes = len(lane_ends)
        placed.extend(Placed(item=item, lane=lane, lanes=lanes) for item, lane in cluster)

    for (start, end), item in spans:
        end = max(end, start + dt.timedelta(microseconds=1))  # a zero-length item still takes its instant
        if cluster_end is not None and start >= cluster_end:
            close_cluster()
            cluster, lane_ends, cluster_end = [], [], None
        lane = next((n for n, lane_end in enumerate(lane_ends) if lane_end <= start), None)
        if lane is None:
            lane = len(lane_ends)
            lane_ends.append(end)
        else:
            lane_ends[lane] = end
        cluster.append((item, lane))
        cluster_end = end if cluster_end is None else max(cluster_end, end)
    close_cluster()
    return placed


def grid_rows(start: dt.datetime, end: dt.datetime, day: dt.date, zone: dt.tzinfo) -> tuple[int, int]:
    """The first row and the number of rows an appointment covers on ``day``'s grid in ``zone``
    (rows of ``ROW`` from midnight), clipped to the day, at least one row.

    Rows follow the wall clock, as the hour labels do: on the day clocks change an appointment
    sits at the hours its owner's clock shows (1:30 to 3:30 on a spring-forward night covers two
    hours of the grid, though one hour passes)."""

    def row(moment: dt.datetime, round_up: bool) -> int:
        local = moment.astimezone(zone)
        if local.date() < day:
            return 0
        if local.date() > day:
            return ROWS_PER_DAY
        minutes = local.hour * 60 + local.minute + local.second / 60
        quarters = minutes / (ROW.total_seconds() / 60)
        return math.ceil(quarters) if round_up else math.floor(quarters)

    first = min(row(start, round_up=False), ROWS_PER_DAY - 1)
    return first, max(1, row(end, round_up=True) - first)
