"""Find a time's slot search: working hours on each person's clock, busy time of every kind."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from calendarsync.scheduling import Person, TimeTaken, WorkingHours, free_slots

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
HOUR = dt.timedelta(hours=1)
MONDAY = dt.date(2026, 6, 1)


def local(day: dt.date, hour: float, zone: zoneinfo.ZoneInfo = CHICAGO) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(int(hour), int(hour % 1 * 60)), zone)


def busy(day: dt.date, start: float, end: float, **kwargs: object) -> TimeTaken:
    return TimeTaken(start=local(day, start), end=local(day, end), **kwargs)  # type: ignore[arg-type]


def starts(slots: list, zone: zoneinfo.ZoneInfo = CHICAGO) -> list[str]:
    return [f"{s.start.astimezone(zone):%a %H:%M}-{s.free_until.astimezone(zone):%H:%M}" for s in slots]


def search(people: list[Person], length: dt.timedelta = HOUR, since: dt.datetime | None = None,
           days: int = 7, limit: int = 3) -> list:
    since = since or local(MONDAY, 0)
    return free_slots(people=people, length=length, since=since, until=since + dt.timedelta(days=days), limit=limit)


def chicago(*taken: TimeTaken) -> Person:
    return Person(hours=WorkingHours(zone=CHICAGO), taken=taken)


def test_an_empty_calendar_is_free_during_working_hours_only() -> None:
    assert starts(search([chicago()])) == ["Mon 08:00-17:00", "Tue 08:00-17:00", "Wed 08:00-17:00"]


def test_the_slot_is_free_for_everyone_and_long_enough() -> None:
    dana = chicago(busy(MONDAY, 8, 10), busy(MONDAY, 13, 17))
    marcus = chicago(busy(MONDAY, 10, 11.5), busy(MONDAY, 12, 12.5))
    # Common free time on Monday: 11:30-12:00 (too short) and 12:30-13:00 (too short) for an hour.
    assert starts(search([dana, marcus])) == ["Tue 08:00-17:00", "Wed 08:00-17:00", "Thu 08:00-17:00"]
    assert starts(search([dana, marcus], length=dt.timedelta(minutes=30))) == [
        "Mon 11:30-12:00", "Mon 12:30-13:00", "Tue 08:00-17:00"]


def test_search_starts_now_at_the_next_quarter_hour() -> None:
    now = local(MONDAY, 9) + dt.timedelta(minutes=7)
    assert starts(search([chicago()], since=now, limit=1)) == ["Mon 09:15-17:00"]


def test_tentative_and_busy_blocks_count_and_free_does_not() -> None:
    person = chicago(busy(MONDAY, 8, 12, show_as="tentative"), busy(MONDAY, 12, 15, show_as="oof"),
                     busy(MONDAY, 15, 17, show_as="free"))
    assert starts(search([person], limit=1)) == ["Mon 15:00-17:00"]


def test_an_all_day_appointment_takes_the_whole_day_in_the_persons_zone() -> None:
    # All-day dates float: midnight UTC of the date, whatever the zone.
    day_off = TimeTaken(start=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), end=dt.datetime(2026, 6, 3, tzinfo=dt.UTC),
                        all_day=True)
    assert starts(search([chicago(day_off)], limit=1)) == ["Wed 08:00-17:00"]
    holiday = TimeTaken(start=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), end=dt.datetime(2026, 6, 2, tzinfo=dt.UTC),
                        all_day=True, show_as="free")
    assert starts(search([chicago(holiday)], limit=1)) == ["Mon 08:00-17:00"]


def test_an_appointment_across_midnight_blocks_both_mornings_hours() -> None:
    night_job = TimeTaken(start=local(MONDAY, 16), end=local(MONDAY + dt.timedelta(days=1), 10))
    assert starts(search([chicago(night_job)], limit=2)) == ["Mon 08:00-16:00", "Tue 10:00-17:00"]


def test_each_person_works_on_their_own_clock() -> None:
    new_yorker = Person(hours=WorkingHours(zone=NEW_YORK))  # 8-17 Eastern is 7-16 Central
    assert starts(search([chicago(), new_yorker], limit=1)) == ["Mon 08:00-16:00"]


def test_weekends_are_skipped() -> None:
    friday_evening = local(MONDAY + dt.timedelta(days=4), 17)
    assert starts(search([chicago()], since=friday_evening, limit=1)) == ["Mon 08:00-17:00"]


def test_the_day_clocks_change_work_still_starts_at_eight() -> None:
    # Sunday 8 March 2026: clocks spring forward in Chicago; Monday is the first working day after.
    hours = WorkingHours(zone=CHICAGO, weekdays=frozenset(range(7)))
    since = dt.datetime(2026, 3, 7, 18, tzinfo=CHICAGO)
    slots = free_slots(people=[Person(hours=hours)], length=HOUR, since=since, until=since + dt.timedelta(days=3))
    assert starts(slots)[:3] == ["Sun 08:00-17:00", "Mon 08:00-17:00", "Tue 08:00-17:00"]
    assert slots[0].start == dt.datetime(2026, 3, 8, 13, tzinfo=dt.UTC)  # 8:00 CDT
    assert slots[1].start - slots[0].start == dt.timedelta(hours=24)
    # And the day before the change, 8:00 was 14:00 UTC.
    saturday = free_slots(people=[Person(hours=hours)], length=HOUR, since=dt.datetime(2026, 3, 7, tzinfo=CHICAGO),
                          until=dt.datetime(2026, 3, 7, 12, tzinfo=CHICAGO))
    assert saturday[0].start == dt.datetime(2026, 3, 7, 14, tzinfo=dt.UTC)


def test_nobody_free_gives_no_slot_and_bad_questions_are_refused() -> None:
    always = chicago(TimeTaken(start=local(MONDAY, 0), end=local(MONDAY + dt.timedelta(days=8), 0)))
    assert search([always]) == []
    with pytest.raises(ValueError, match="at least one"):
        search([])
    with pytest.raises(ValueError, match="positive"):
        search([chicago()], length=dt.timedelta(0))
