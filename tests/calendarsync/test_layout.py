"""The hour grid's placement: overlapping appointments side by side, rows on the wall clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from calendarsync.layout import ROWS_PER_DAY, grid_rows, side_by_side

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
DAY = dt.date(2026, 6, 2)


def at(hour: float, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60)), CHICAGO)


def lanes(spans: list[tuple[float, float]]) -> list[tuple[str, int, int]]:
    items = [(f"{a}-{b}", at(a), at(b)) for a, b in spans]
    placed = side_by_side(items, lambda item: (item[1], item[2]))
    return [(p.item[0], p.lane, p.lanes) for p in placed]


def test_appointments_apart_take_the_full_width() -> None:
    assert lanes([(9, 10), (11, 12)]) == [("9-10", 0, 1), ("11-12", 0, 1)]


def test_touching_is_not_overlapping() -> None:
    assert lanes([(10, 11), (9, 10)]) == [("9-10", 0, 1), ("10-11", 0, 1)]


def test_two_overlapping_stand_side_by_side() -> None:
    assert lanes([(9, 11), (10, 12)]) == [("9-11", 0, 2), ("10-12", 1, 2)]


def test_a_chain_shares_one_width_and_reuses_a_freed_lane() -> None:
    # 9-11 overlaps 10-12, which overlaps 11-13; 11-13 takes lane 0 again, freed at 11.
    assert lanes([(9, 11), (10, 12), (11, 13), (14, 15)]) == [
        ("9-11", 0, 2), ("10-12", 1, 2), ("11-13", 0, 2), ("14-15", 0, 1)]


def test_three_at_once_and_the_longest_first_on_equal_starts() -> None:
    assert lanes([(9, 10), (9, 12), (9.5, 10.5)]) == [("9-12", 0, 3), ("9-10", 1, 3), ("9.5-10.5", 2, 3)]


def test_zero_length_appointments_at_the_same_minute_do_not_hide_each_other() -> None:
    assert lanes([(9, 9), (9, 9)]) == [("9-9", 0, 2), ("9-9", 1, 2)]


def test_rows_are_quarter_hours_on_the_wall_clock() -> None:
    assert grid_rows(at(9), at(10), DAY, CHICAGO) == (36, 4)
    # Rounded outwards to whole quarters, at least one row.
    assert grid_rows(at(9) + dt.timedelta(minutes=10), at(9) + dt.timedelta(minutes=20), DAY, CHICAGO) == (36, 2)
    assert grid_rows(at(9), at(9), DAY, CHICAGO) == (36, 1)


def test_an_appointment_across_midnight_is_clipped_to_each_day() -> None:
    start, end = at(22), at(2, DAY + dt.timedelta(days=1))
    assert grid_rows(start, end, DAY, CHICAGO) == (88, ROWS_PER_DAY - 88)
    assert grid_rows(start, end, DAY + dt.timedelta(days=1), CHICAGO) == (0, 8)


def test_the_day_clocks_spring_forward_keeps_the_wall_clock() -> None:
    spring = dt.date(2026, 3, 8)  # 2:00 becomes 3:00 in Chicago
    start = dt.datetime(2026, 3, 8, 1, 30, tzinfo=CHICAGO)
    end = start.astimezone(dt.UTC) + dt.timedelta(hours=1)  # 3:30 on the clock
    assert grid_rows(start, end, spring, CHICAGO) == (6, 8)
    nine = dt.datetime(2026, 3, 8, 9, tzinfo=CHICAGO)
    assert grid_rows(nine, nine + dt.timedelta(hours=1), spring, CHICAGO) == (36, 4)
