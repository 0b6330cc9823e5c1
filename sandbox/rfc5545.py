"""RFC 5545 recurrence rules, read strictly: the grammar and the rule parts' MUST / MUST NOT.

python-dateutil expands rules but accepts much that RFC 5545 forbids (``BYMONTHDAY=32``, ``BYDAY=2MO``
in a weekly rule, COUNT with UNTIL) and fails late on some of what it refuses. Both emulators read a
rule here first, so a rule is refused (or accepted) when it is written, never when it is listed.
Reference: https://www.rfc-editor.org/rfc/rfc5545#section-3.3.10
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from dateutil import rrule

FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Rule part -> (lowest, highest) absolute value, and whether negative values are allowed.
RANGES: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 60, False), "BYMINUTE": (0, 59, False), "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False), "BYSETPOS": (1, 366, True),
}
PARTS = ("FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", *RANGES)
WEEKDAY = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")


class RuleError(ValueError):
    """A recurrence rule RFC 5545 does not allow; the message says which part and why."""


@dataclass(frozen=True)
class Until:
    """UNTIL as written: a date, a UTC date-time (``utc``), or a floating date-time."""

    value: dt.date | dt.datetime
    utc: bool = False

    @property
    def is_date(self) -> bool:
        return not isinstance(self.value, dt.datetime)


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int = 1
    count: int | None = None
    until: Until | None = None
    wkst: str = "MO"  # RFC 5545's default week start
    by_day: tuple[tuple[int | None, str], ...] = ()
    by: dict[str, tuple[int, ...]] = field(default_factory=dict)
    parts: frozenset[str] = frozenset()  # the parts the rule names

    @property
    def bounded(self) -> bool:
        return self.count is not None or self.until is not None


def parse_rule(text: str) -> Rule:
    """An RRULE value (without the ``RRULE:`` name). One trailing ``;`` is tolerated, as Google
    writes it in its own exports; names and values are case-insensitive (RFC 5545 section 2)."""
    body = text.strip()
    if body.endswith(";"):
        body = body[:-1]
    if not body:
        raise RuleError("the rule is empty")
    values: dict[str, str] = {}
    for part in body.split(";"):
        name, equals, value = part.partition("=")
        name = name.strip().upper()
        if not equals or not name or not value.strip():
            raise RuleError(f"{part!r} is not NAME=VALUE")
        if name not in PARTS:
            raise RuleError(f"{name} is not a recurrence rule part")
        if name in values:
            raise RuleError(f"{name} appears twice")
        values[name] = value.strip().upper()
    freq = values.get("FREQ")
    if freq is None:
        raise RuleError("FREQ is required")
    if freq not in FREQUENCIES:
        raise RuleError(f"FREQ={freq} is not a frequency")
    if "COUNT" in values and "UNTIL" in values:
        raise RuleError("COUNT and UNTIL cannot both be given")
    by = {name: _numbers(name, values[name]) for name in RANGES if name in values}
    by_day = _weekdays(values["BYDAY"]) if "BYDAY" in values else ()
    rule = Rule(
        freq=freq,
        interval=_positive("INTERVAL", values["INTERVAL"]) if "INTERVAL" in values else 1,
        count=_positive("COUNT", values["COUNT"]) if "COUNT" in values else None,
        until=_until(values["UNTIL"]) if "UNTIL" in values else None,
        wkst=_day("WKST", values["WKST"]) if "WKST" in values else "MO",
        by_day=by_day, by=by, parts=frozenset(values),
    )
    _check_combinations(rule)
    return rule


def _positive(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise RuleError(f"{name}={value} is not a positive whole number")
    return int(value)


def _numbers(name: str, value: str) -> tuple[int, ...]:
    low, high, signed = RANGES[name]
    numbers = []
    for item in value.split(","):
        if not re.fullmatch(r"[+-]?\d{1,3}", item):
            raise RuleError(f"{name}={value}: {item!r} is not a number")
        number = int(item)
        if (number < 0 and not signed) or not low <= abs(number) <= high:
            raise RuleError(f"{name}={value}: {number} is out of range")
        numbers.append(number)
    return tuple(numbers)


def _day(name: str, value: str) -> str:
    if value not in DAYS:
        raise RuleError(f"{name}={value} is not a weekday")
    return value


def _weekdays(value: str) -> tuple[tuple[int | None, str], ...]:
    days: list[tuple[int | None, str]] = []
    for item in value.split(","):
        match = WEEKDAY.fullmatch(item)
        if match is None:
            raise RuleError(f"BYDAY={value}: {item!r} is not a weekday")
        sign, digits, day = match.groups()
        if digits is None:
            if sign:
                raise RuleError(f"BYDAY={value}: {item!r} has a sign but no number")
            days.append((None, day))
            continue
        number = int(digits)
        if not 1 <= number <= 53:
            raise RuleError(f"BYDAY={value}: {item!r} is out of range")
        days.append((-number if sign == "-" else number, day))
    return tuple(days)


def _until(value: str) -> Until:
    match = UNTIL.fullmatch(value)
    if match is None:
        raise RuleError(f"UNTIL={value} is not a date or date-time")
    day_text, time_text, zulu = match.groups()
    try:
        day = dt.datetime.strptime(day_text, "%Y%m%d").date()  # noqa: DTZ007 - a date, no zone
        if time_text is None:
            return Until(day)
        moment = dt.datetime.combine(day, dt.datetime.strptime(time_text, "%H%M%S").time())  # noqa: DTZ007
    except ValueError as exc:
        raise RuleError(f"UNTIL={value} is not a valid date") from exc
    return Until(moment.replace(tzinfo=dt.UTC) if zulu else moment, utc=bool(zulu))


def _check_combinations(rule: Rule) -> None:
    """The rule parts' MUST NOTs in RFC 5545 section 3.3.10."""
    freq, parts = rule.freq, rule.parts
    if any(number is not None for number, _ in rule.by_day):
        if freq not in ("MONTHLY", "YEARLY"):
            raise RuleError(f"BYDAY with a number is only for MONTHLY and YEARLY rules, not {freq}")
        if freq == "YEARLY" and "BYWEEKNO" in parts:
            raise RuleError("BYDAY with a number cannot be used with BYWEEKNO")
        if freq == "MONTHLY" and any(abs(number or 0) > 5 for number, _ in rule.by_day):
            raise RuleError("a month has at most five of each weekday")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise RuleError("BYMONTHDAY cannot be used in a WEEKLY rule")
    if "BYYEARDAY" in parts and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        raise RuleError(f"BYYEARDAY cannot be used in a {freq} rule")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise RuleError("BYWEEKNO is only for YEARLY rules")
    if "BYSETPOS" in parts and not any(name.startswith("BY") and name != "BYSETPOS" for name in parts):
        raise RuleError("BYSETPOS needs another BYxxx rule part to select from")


# -- evaluation ---------------------------------------------------------------------------------

def dateutil_rule(rule: Rule, dtstart: dt.datetime, *, until: dt.datetime | None = None) -> rrule.rrule:
    """The rule as a dateutil rrule from ``dtstart``. ``until`` overrides the rule's own UNTIL
    (callers resolve a date or floating UNTIL in the series' zone)."""
    options: dict[str, Any] = {"interval": rule.interval, "wkst": DAYS.index(rule.wkst), "dtstart": dtstart}
    if rule.count is not None:
        options["count"] = rule.count
    if until is not None:
        options["until"] = until
    if rule.by_day:
        options["byweekday"] = [rrule.weekdays[DAYS.index(day)](number) if number else rrule.weekdays[DAYS.index(day)]
                                for number, day in rule.by_day]
    for name, keyword in (("BYMONTH", "bymonth"), ("BYMONTHDAY", "bymonthday"), ("BYYEARDAY", "byyearday"),
                          ("BYWEEKNO", "byweekno"), ("BYHOUR", "byhour"), ("BYMINUTE", "byminute"),
                          ("BYSECOND", "bysecond"), ("BYSETPOS", "bysetpos")):
        if name in rule.by:
            options[keyword] = list(rule.by[name])
    # dateutil fills unnamed BYxxx parts from dtstart exactly as RFC 5545 says a rule inherits them.
    return rrule.rrule(getattr(rrule, rule.freq), **options)


def resolve_until(until: Until, zone: dt.tzinfo | None) -> dt.datetime:
    """UNTIL as an instant to stop at, for a series whose starts are in ``zone`` (None: floating
    dates of an all-day series). A date means the whole of that day, and a floating date-time is
    read in the series' zone: what Google does with the rules its own exports contain."""
    if until.is_date:
        day = until.value if not isinstance(until.value, dt.datetime) else until.value.date()
        end_of_day = dt.datetime.combine(day, dt.time(23, 59, 59))
        return end_of_day if zone is None else end_of_day.replace(tzinfo=zone)
    assert isinstance(until.value, dt.datetime)
    if zone is None:
        return until.value.replace(tzinfo=None)
    if until.utc:
        return until.value.astimezone(zone)
    return until.value.replace(tzinfo=zone)
