"""Find a time: the next slots in which every chosen person is free. Plain functions of times, no
database: the page reads each calendar through the privacy selector (times only) and hands the
times here.

Who is free when:
- within their working hours (their own, from User Settings: Monday to Friday, 8 to 5 unless they
  chose otherwise), on the wall clock of their own time zone, so a slot respects the hours of
  people in other zones too;
- not during anything on their calendar that shows them busy: busy blocks of private appointments
  count like any other; tentative counts as busy; only "free" (Outlook's Show as Free, Google's
  "transparent") does not block;
- an all-day appointment takes the whole of its dates in the person's own zone (all-day dates
  float: they are midnight UTC in the database, the same dates everywhere).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from accounts.models import DEFAULT_WORK_DAYS, DEFAULT_WORK_END, DEFAULT_WORK_START, User, describe_working_hours

Interval = tuple[dt.datetime, dt.datetime]

# Only this show-as leaves a person free; Graph's tentative, busy, oof, workingElsewhere and unknown
# all block. Reference: https://learn.microsoft.com/en-us/graph/api/resources/event
FREE_SHOW_AS = frozenset({"free"})
STEP = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class WorkingHours:
    """A person's working week, on their own wall clock."""

    zone: dt.tzinfo
    start: dt.time = DEFAULT_WORK_START
    end: dt.time = DEFAULT_WORK_END
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(DEFAULT_WORK_DAYS))  # Monday is 0

    def intervals(self, since: dt.datetime, until: dt.datetime) -> list[Interval]:
        """The working stretches between ``since`` and ``until``, as UTC instants. Each day's
        hours are read on that day's clock, so on the day clocks change work still starts at 8."""
        day = since.astimezone(self.zone).date() - dt.timedelta(days=1)
        last = until.astimezone(self.zone).date()
        out: list[Interval] = []
        while day <= last:
            if day.weekday() in self.weekdays:
                begin = dt.datetime.combine(day, self.start, self.zone).astimezone(dt.UTC)
                finish = dt.datetime.combine(day, self.end, self.zone).astimezone(dt.UTC)
                begin, finish = max(begin, since), min(finish, until)
                if begin < finish:
                    out.append((begin, finish))
            day += dt.timedelta(days=1)
        return out


@dataclass(frozen=True)
class TimeTaken:
    """Something on a calendar, as the privacy selector's busy block gives it: times only."""

    start: dt.datetime
    end: dt.datetime
    all_day: bool = False
    show_as: str = "busy"


@dataclass(frozen=True)
class Person:
    hours: WorkingHours
    taken: Sequence[TimeTaken] = ()


@dataclass(frozen=True)
class Slot:
    start: dt.datetime
    end: dt.datetime
    free_until: dt.datetime  # how long everyone stays free from ``start``


def busy_intervals(taken: Iterable[TimeTaken], zone: dt.tzinfo) -> list[Interval]:
    """The stretches ``taken`` blocks, as UTC instants, sorted and merged."""
    out: list[Interval] = []
    for item in taken:
        if item.show_as in FREE_SHOW_AS:
            continue
        if item.all_day:
            first, after_last = item.start.astimezone(dt.UTC).date(), item.end.astimezone(dt.UTC).date()
            out.append((dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC),
                        dt.datetime.combine(max(after_last, first + dt.timedelta(days=1)), dt.time(), zone)
                        .astimezone(dt.UTC)))
        else:
            out.append((item.start.astimezone(dt.UTC), item.end.astimezone(dt.UTC)))
    return _merge(out)


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(available: list[Interval], busy: list[Interval]) -> list[Interval]:
    """``available`` minus ``busy``; both sorted, ``busy`` merged."""
    out: list[Interval] = []
    index = 0
    for start, end in available:
        while index < len(busy) and busy[index][1] <= start:
            index += 1
        cursor, scan = start, index
        while scan < len(busy) and busy[scan][0] < end:
            if busy[scan][0] > cursor:
                out.append((cursor, busy[scan][0]))
            cursor = max(cursor, busy[scan][1])
            scan += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def _intersect(left: list[Interval], right: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def _round_up(moment: dt.datetime) -> dt.datetime:
    """The next quarter hour (in UTC; every zone in use is a whole number of quarter hours off)."""
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    steps = -((epoch - moment) // STEP)
    return epoch + steps * STEP


def free_slots(*, people: Sequence[Person], length: dt.timedelta, since: dt.datetime, until: dt.datetime,
               limit: int = 5) -> list[Slot]:
    """The first ``limit`` slots of ``length`` between ``since`` and ``until`` in which every one
    of ``people`` is within working hours and free: one slot per stretch of common free time
    (at its first quarter hour), with how long that stretch lasts."""
    if not people:
        raise ValueError("Choose at least one person.")
    if length <= dt.timedelta(0):
        raise ValueError("The length must be positive.")
    since, until = since.astimezone(dt.UTC), until.astimezone(dt.UTC)
    common: list[Interval] | None = None
    for person in people:
        free = _subtract(person.hours.intervals(since, until), busy_intervals(person.taken, person.hours.zone))
        common = free if common is None else _intersect(common, free)
    slots: list[Slot] = []
    for start, end in common or []:
        first = _round_up(start)
        if first + length <= end:
            slots.append(Slot(start=first, end=first + length, free_until=end))
            if len(slots) == limit:
                break
    return slots


def working_hours_for(user: User) -> WorkingHours:
    """A user's working hours, as they set them in User Settings (the house default, Monday to
    Friday 8 to 5, until they do), on their own clock. The one place that reads them: Find a time
    and the calendar's shading both come here."""
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return WorkingHours(zone=zone, start=user.work_start, end=user.work_end,
                        weekdays=frozenset(user.work_days or ()))


def working_hours_label(user: User) -> str:
    """The hours ``working_hours_for`` applies, in words, with the zone: "... (America/Chicago)"."""
    hours = working_hours_for(user)
    return f"{describe_working_hours(sorted(hours.weekdays), hours.start, hours.end)} ({hours.zone})"
