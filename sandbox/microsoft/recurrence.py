"""Time zones and recurrence as Outlook models them: Windows zone names, patternedRecurrence, expansion.

A patternedRecurrence is checked as Graph checks it (every property's value, even one its pattern
ignores) and expanded with dateutil by what Graph's pattern means, which is not always what the
nearest RFC 5545 rule means:

- ``index`` with several ``daysOfWeek`` picks one day a month from all of them ("the first weekday"),
  an RFC ``BYSETPOS``, not one per weekday;
- ``dayOfMonth`` past the end of a short month falls on its last day (31 is "the last day");
- the series begins on the first day on or after ``range.startDate`` that fits the pattern, and the
  ``interval`` counts from that first occurrence;
- ``firstDayOfWeek`` (default Sunday) is where a week of an every-N-weeks pattern starts.

Reference: https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern
Reference: https://learn.microsoft.com/en-us/graph/api/resources/recurrencerange
Reference: https://learn.microsoft.com/en-us/graph/outlook-schedule-recurring-events
Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/absolutemonthlyrecurrence
Error codes are Exchange's, which Graph passes through for Outlook items.
Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from typing import Any

from dateutil import rrule
from tzlocal.windows_tz import win_tz

from ..rfc5545 import DAYS, Rule, RuleError, dateutil_rule, parse_rule, resolve_until
from .common import GraphError, Json, bad_request, parse_iso

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")
# Exchange refuses a recurrence ending after 1 September 4500 (ErrorRecurrenceEndDateTooBig).
LAST_END_DATE = dt.date(4500, 9, 1)
NO_DATE = "0001-01-01"
# Exchange's documented interval ranges: days 1-999, weeks and months 1-99 (yearly has none).
# Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/dailyrecurrence
# Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/weeklyrecurrence
MAX_INTERVAL = {"daily": 999, "weekly": 99, "absoluteMonthly": 99, "relativeMonthly": 99}
GRAPH_DATETIME = "%Y-%m-%dT%H:%M:%S.0000000"


def zone(name: str) -> zoneinfo.ZoneInfo:
    """A Graph time zone: any Windows zone name in the CLDR table Graph accepts (``Pacific Standard
    Time``), or an IANA name.
    Reference: https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone"""
    try:
        return zoneinfo.ZoneInfo(win_tz.get(name, name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise bad_request(f"A valid TimeZone value must be specified. The following TimeZone value is not "
                          f"supported: '{name}'.", "TimeZoneNotSupportedException") from exc


def wall_time(value: Json) -> dt.datetime:
    """The naive wall-clock time of a Graph dateTimeTimeZone, in its own zone."""
    moment = parse_iso(str(value.get("dateTime", "")))
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone(value.get("timeZone") or "UTC")).replace(tzinfo=None)
    return moment


def localize(wall: dt.datetime, zone_name: str) -> dt.datetime:
    # zoneinfo resolves wall times in a DST gap or overlap with fold=0, as Exchange does.
    return wall.replace(tzinfo=zone(zone_name))


def graph_time(moment: dt.datetime, zone_name: str) -> Json:
    return {"dateTime": moment.astimezone(zone(zone_name)).strftime(GRAPH_DATETIME), "timeZone": zone_name}


def floating_time(wall: dt.datetime, zone_name: str) -> Json:
    """All-day events are floating: midnight in whatever zone the caller asked for."""
    return {"dateTime": wall.strftime(GRAPH_DATETIME), "timeZone": zone_name}


# -- checking a patternedRecurrence --------------------------------------------------------------

def invalid(message: str) -> GraphError:
    return GraphError(400, "ErrorCalendarInvalidRecurrence", message)


def out_of_range(message: str) -> GraphError:
    return GraphError(400, "ErrorCalendarOutOfRange", message)


def enum_value(value: Any, allowed: tuple[str, ...]) -> str:
    """An enum member, matched without regard to case as Graph's examples write them ("Monday")."""
    for member in allowed:
        if isinstance(value, str) and value.lower() == member.lower():
            return member
    # An enum member Graph does not know fails to deserialize, before Exchange sees the request.
    raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")


def whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type "
                         f"'Edm.Int32' ({name}).")
    if not low <= value <= high:
        raise out_of_range(f"The value of {name}, {value}, is out of range ({low} to {high}).")
    return value


def a_date(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type "
                         f"'Edm.Date' ({name}).") from exc


def normalise_recurrence(value: Any, start_wall: dt.datetime, zone_name: str) -> Json:
    """A patternedRecurrence checked as Graph checks it, in the shape Graph returns it (every
    property present, defaults filled in). ``start_wall`` is the event's start in ``zone_name``."""
    if not isinstance(value, dict) or not isinstance(value.get("pattern"), dict) \
            or not isinstance(value.get("range"), dict):
        raise invalid("A recurrence needs a pattern and a range.")
    pattern_in, range_in = value["pattern"], value["range"]
    if "type" not in pattern_in:
        raise invalid("The recurrence pattern has no type.")
    kind = enum_value(pattern_in["type"], PATTERN_TYPES)
    days = pattern_in.get("daysOfWeek") or []
    if not isinstance(days, list):
        raise GraphError(400, "RequestBodyRead", "daysOfWeek must be a collection.")
    pattern: Json = {
        "type": kind,
        "interval": whole(pattern_in.get("interval", 1), "interval", 1, MAX_INTERVAL.get(kind, 2**31 - 1)),
        "month": whole(pattern_in.get("month", 0), "month", 0, 12),
        "dayOfMonth": whole(pattern_in.get("dayOfMonth", 0), "dayOfMonth", 0, 31),
        "daysOfWeek": list(dict.fromkeys(enum_value(day, WEEKDAYS) for day in days)),
        "firstDayOfWeek": enum_value(pattern_in.get("firstDayOfWeek") or "sunday", WEEKDAYS),
        "index": enum_value(pattern_in.get("index") or "first", tuple(INDEXES)),
    }
    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not pattern["daysOfWeek"]:
        raise invalid(f"A {kind} pattern needs daysOfWeek.")
    if kind in ("absoluteMonthly", "absoluteYearly") and pattern["dayOfMonth"] == 0:
        raise out_of_range(f"A {kind} pattern needs dayOfMonth (1 to 31).")
    if kind in ("absoluteYearly", "relativeYearly") and pattern["month"] == 0:
        raise out_of_range(f"A {kind} pattern needs month (1 to 12).")
    if "type" not in range_in:
        raise invalid("The recurrence range has no type.")
    range_kind = enum_value(range_in["type"], RANGE_TYPES)
    time_zone = range_in.get("recurrenceTimeZone") or ""
    if not isinstance(time_zone, str):
        raise GraphError(400, "RequestBodyRead", "recurrenceTimeZone must be a string.")
    if time_zone:
        zone(time_zone)
    if not range_in.get("startDate"):
        raise GraphError(400, "ErrorInvalidRecurrenceRange", "The recurrence range needs a startDate.")
    start_date = a_date(range_in["startDate"], "startDate")
    if start_date != start_wall.date():
        # "Must be the same value as the start property of the recurring event."
        raise GraphError(400, "ErrorInvalidRecurrenceRange",
                         f"The recurrence range's startDate {start_date} is not the date the event starts, "
                         f"{start_wall.date()}.")
    end_date = a_date(range_in.get("endDate") or NO_DATE, "endDate")
    occurrences = whole(range_in.get("numberOfOccurrences", 0), "numberOfOccurrences", 0, 2**31 - 1)
    if range_kind == "endDate":
        if not range_in.get("endDate"):
            raise GraphError(400, "ErrorInvalidRecurrenceRange", "An endDate range needs an endDate.")
        if end_date < start_date:
            raise GraphError(400, "ErrorInvalidRecurrenceRange", "The recurrence ends before it starts.")
        if end_date > LAST_END_DATE:
            raise GraphError(400, "ErrorRecurrenceEndDateTooBig", "The recurrence ends after 1 September 4500.")
    if range_kind == "numbered" and occurrences < 1:
        raise out_of_range("A numbered range needs a positive numberOfOccurrences.")
    recurrence_range: Json = {
        "type": range_kind, "startDate": start_date.isoformat(),
        "endDate": end_date.isoformat() if range_kind == "endDate" else NO_DATE,
        "recurrenceTimeZone": time_zone or zone_name,
        "numberOfOccurrences": occurrences if range_kind == "numbered" else 0,
    }
    recurrence = {"pattern": pattern, "range": recurrence_range}
    if series_rule(recurrence, start_wall) is None:
        raise GraphError(400, "ErrorRecurrenceHasNoOccurrence",
                         "The recurrence has no occurrence between its start and end dates.")
    return recurrence


# -- expansion -----------------------------------------------------------------------------------

def month_days(day_of_month: int) -> dict[str, Any]:
    """``dayOfMonth`` as dateutil options: past a short month's end it falls on the month's last day."""
    if day_of_month <= 28:
        return {"bymonthday": [day_of_month]}
    return {"bymonthday": list(range(28, day_of_month + 1)), "bysetpos": [-1]}


def pattern_options(pattern: Json) -> tuple[int, dict[str, Any]]:
    kind = pattern["type"]
    days = [rrule.weekdays[WEEKDAYS.index(day)] for day in pattern["daysOfWeek"]]
    options: dict[str, Any] = {"wkst": WEEKDAYS.index(pattern["firstDayOfWeek"])}
    if kind == "daily":
        return rrule.DAILY, options
    if kind == "weekly":
        return rrule.WEEKLY, {**options, "byweekday": days}
    if kind in ("absoluteYearly", "relativeYearly"):
        options["bymonth"] = [pattern["month"]]
    if kind.startswith("absolute"):
        options.update(month_days(pattern["dayOfMonth"]))
    else:
        # One day a month (or year): the index-th of all the days that match any of daysOfWeek.
        options.update(byweekday=days, bysetpos=[INDEXES[pattern["index"]]])
    return (rrule.MONTHLY if kind.endswith("Monthly") else rrule.YEARLY), options


def series_rule(recurrence: Json, first_start: dt.datetime) -> rrule.rrule | None:
    """The series' occurrences (wall-clock starts) as a dateutil rule; None when it has none.
    ``first_start`` gives the time of day; the range's startDate gives the day to start from."""
    pattern, recurrence_range = recurrence["pattern"], recurrence["range"]
    frequency, options = pattern_options(pattern)
    start = dt.datetime.combine(dt.date.fromisoformat(recurrence_range["startDate"]), first_start.time())
    end: dt.datetime | None = None
    if recurrence_range["type"] == "endDate":
        end = dt.datetime.combine(dt.date.fromisoformat(recurrence_range["endDate"]), dt.time(23, 59, 59))
    # The first occurrence is the first day from startDate that fits the pattern; the interval
    # counts from there. Every pattern fits some day within a year or so, so this search ends.
    first = rrule.rrule(frequency, dtstart=start, until=end, **options).after(start, inc=True)
    if first is None:
        return None
    bounds: dict[str, Any] = {"until": end}
    if recurrence_range["type"] == "numbered":
        bounds = {"count": int(recurrence_range["numberOfOccurrences"])}
    return rrule.rrule(frequency, dtstart=first, interval=int(pattern["interval"]), **options, **bounds)


def expand(recurrence: Json, first_start: dt.datetime, low: dt.datetime, high: dt.datetime) -> list[dt.datetime]:
    """Wall-clock starts of the series' occurrences between two wall-clock bounds (inclusive)."""
    rule = series_rule(recurrence, first_start)
    return [] if rule is None else list(rule.between(low, high, inc=True))


# -- the control API's RFC 5545 rules --------------------------------------------------------------

class Inexpressible(ValueError):
    """An RFC 5545 rule Outlook's patternedRecurrence cannot say; the message says why."""


SUPPORTED_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH",
                             "BYSETPOS"})


def rrule_to_pattern(text: str, start: dt.datetime, zone_name: str) -> Json:
    """An RFC 5545 RRULE (the control API's neutral form) as the patternedRecurrence that means the
    same, for a series starting at ``start`` (wall-clock, in ``zone_name``). Raises Inexpressible."""
    try:
        rule = parse_rule(text.strip().removeprefix("RRULE:").removeprefix("rrule:"))
    except RuleError as exc:
        raise Inexpressible(f"rrule {text!r}: {exc}") from exc
    extra = sorted(rule.parts - SUPPORTED_PARTS)
    if extra:
        raise Inexpressible(f"Outlook's patternedRecurrence has nothing for {', '.join(extra)}")
    pattern = rfc_pattern(rule, start)
    check_first_occurrence(rule, start, zone_name)
    recurrence_range: Json = {"type": "noEnd", "startDate": start.date().isoformat(), "endDate": NO_DATE,
                              "recurrenceTimeZone": zone_name, "numberOfOccurrences": 0}
    if rule.count is not None:
        recurrence_range.update(type="numbered", numberOfOccurrences=rule.count)
    elif rule.until is not None:
        recurrence_range.update(type="endDate", endDate=end_date(rule, start, zone_name).isoformat())
    return {"pattern": pattern, "range": recurrence_range}


def rfc_pattern(rule: Rule, start: dt.datetime) -> Json:
    pattern: Json = {"type": "", "interval": rule.interval, "month": 0, "dayOfMonth": 0, "daysOfWeek": [],
                     "firstDayOfWeek": WEEKDAYS[DAYS.index(rule.wkst)], "index": "first"}
    plain_days = [WEEKDAYS[DAYS.index(day)] for number, day in rule.by_day if number is None]
    if rule.freq in ("SECONDLY", "MINUTELY", "HOURLY"):
        raise Inexpressible(f"Outlook repeats by day, week, month or year, not FREQ={rule.freq}")
    if rule.freq in ("DAILY", "WEEKLY"):
        for part in ("BYMONTH", "BYMONTHDAY", "BYSETPOS"):
            if part in rule.parts:
                raise Inexpressible(f"a FREQ={rule.freq} rule with {part} has no patternedRecurrence")
        if rule.freq == "DAILY" and not rule.by_day:
            return {**pattern, "type": "daily"}
        if rule.freq == "DAILY" and rule.interval != 1:
            raise Inexpressible("a DAILY rule with BYDAY and an INTERVAL has no patternedRecurrence")
        # DAILY;BYDAY=... with no interval is every week on those days.
        return {**pattern, "type": "weekly", "daysOfWeek": plain_days or [WEEKDAYS[start.weekday()]]}
    yearly = rule.freq == "YEARLY"
    months = rule.by.get("BYMONTH", (start.month,) if yearly else ())
    if not yearly and months:
        raise Inexpressible("a MONTHLY rule limited to some months (BYMONTH) has no patternedRecurrence")
    if len(months) > 1:
        raise Inexpressible("patternedRecurrence repeats in one month of the year, not several (BYMONTH)")
    if yearly and rule.by_day and "BYMONTH" not in rule.parts:
        raise Inexpressible("a YEARLY rule by weekday needs BYMONTH: patternedRecurrence counts weekdays "
                            "within a month")
    month = months[0] if months else 0
    if yearly:
        pattern["month"] = month
    if "BYMONTHDAY" in rule.parts and rule.by_day:
        raise Inexpressible("patternedRecurrence cannot combine days of the month with weekdays")
    if rule.by_day:
        return {**pattern, **relative_days(rule), "type": "relativeYearly" if yearly else "relativeMonthly"}
    day = day_of_month(rule, start, month)
    return {**pattern, "dayOfMonth": day, "type": "absoluteYearly" if yearly else "absoluteMonthly"}


def relative_days(rule: Rule) -> Json:
    numbered = [(number, day) for number, day in rule.by_day if number is not None]
    positions = rule.by.get("BYSETPOS", ())
    names = {number: name for name, number in INDEXES.items()}
    if numbered:
        if len(rule.by_day) > 1 or positions:
            raise Inexpressible("patternedRecurrence has one weekday position a month (BYDAY="
                                + ",".join(f"{n or ''}{d}" for n, d in rule.by_day) + ")")
        number, day = numbered[0]
        if number not in names:
            raise Inexpressible(f"patternedRecurrence's index is first to fourth or last, not {number}{day}")
        return {"daysOfWeek": [WEEKDAYS[DAYS.index(day)]], "index": names[number]}
    if len(positions) != 1:
        raise Inexpressible("patternedRecurrence repeats once a month: BYDAY with several weekdays needs one "
                            "BYSETPOS")
    if positions[0] not in names:
        raise Inexpressible(f"patternedRecurrence's index is first to fourth or last, not BYSETPOS={positions[0]}")
    return {"daysOfWeek": [WEEKDAYS[DAYS.index(day)] for _, day in rule.by_day], "index": names[positions[0]]}


def day_of_month(rule: Rule, start: dt.datetime, month: int) -> int:
    """BYMONTHDAY as a dayOfMonth. RFC 5545 skips a month without that day; Outlook moves it to the
    month's last day, so only days every month (of the rule) has, "the last day" (-1), and the
    explicit "28th to 31st, the last of them" (BYMONTHDAY=28,29,30,31;BYSETPOS=-1) translate."""
    shortest = 28 if month == 0 else min(calendar.monthrange(year, month)[1] for year in (2023, 2024))
    days = rule.by.get("BYMONTHDAY", (start.day,))
    positions = rule.by.get("BYSETPOS", ())
    if len(days) == 1 and not positions:
        if days[0] == -1:
            return 31
        if 1 <= days[0] <= shortest:
            return days[0]
    elif positions == (-1,) and days == tuple(range(shortest, max(days) + 1)) and max(days) > shortest:
        return max(days)
    raise Inexpressible(f"BYMONTHDAY={','.join(map(str, days))}"
                        + (f";BYSETPOS={','.join(map(str, positions))}" if positions else "")
                        + " has no patternedRecurrence: RFC 5545 skips months without that day, Outlook "
                          "moves it to the month's last day")


def check_first_occurrence(rule: Rule, start: dt.datetime, zone_name: str) -> None:
    """RFC 5545 counts the start as an occurrence and steps the interval from it; Outlook starts at
    the first day that fits the pattern. They agree only when the start is an occurrence."""
    local = zone(zone_name)
    aware = start.replace(tzinfo=local)
    until = resolve_until(rule.until, local) if rule.until else None
    first = next(iter(dateutil_rule(rule, aware, until=until)), None)
    if first is None or first.replace(tzinfo=None) != start:
        raise Inexpressible(f"the series' start {start:%Y-%m-%d %H:%M} is not an occurrence of its rule; Outlook "
                            "would start it on the first day that fits, so start it on that day")


def end_date(rule: Rule, start: dt.datetime, zone_name: str) -> dt.date:
    """UNTIL as the range's endDate: the last day with an occurrence that UNTIL still includes."""
    assert rule.until is not None
    until = resolve_until(rule.until, zone(zone_name)).replace(tzinfo=None)
    return until.date() if until.time() >= start.time() else until.date() - dt.timedelta(days=1)
