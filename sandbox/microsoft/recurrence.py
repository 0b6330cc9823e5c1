"""Time zones and recurrence as Outlook models them: Windows zone names, patternedRecurrence, expansion."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from dateutil import rrule

from .common import Json, bad_request, parse_iso

# Outlook reports zones by their Windows names; these are the ones a US / European customer meets.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone
WINDOWS_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago",
    "Canada Central Standard Time": "America/Regina",
    "Eastern Standard Time": "America/New_York",
    "Atlantic Standard Time": "America/Halifax",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
GRAPH_DATETIME = "%Y-%m-%dT%H:%M:%S.0000000"


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise bad_request(f"A valid TimeZone value must be specified. '{name}' is not supported.",
                          "TimeZoneNotSupportedException") from exc


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


# -- patternedRecurrence -------------------------------------------------------------------

def rrule_to_pattern(text: str, start: dt.datetime) -> Json:
    """An RFC 5545 RRULE (the control API's neutral form) as a Graph patternedRecurrence."""
    parts = dict(p.split("=", 1) for p in text.upper().removeprefix("RRULE:").split(";") if "=" in p)
    frequency = parts.get("FREQ", "")
    interval = int(parts.get("INTERVAL", 1))
    by_day = [d for d in parts.get("BYDAY", "").split(",") if d]
    pattern: Json = {"type": "", "interval": interval, "month": 0, "dayOfMonth": 0, "daysOfWeek": [],
                     "firstDayOfWeek": "sunday", "index": "first"}
    relative = [d for d in by_day if d[:-2]]
    if frequency == "DAILY":
        pattern["type"] = "daily"
    elif frequency == "WEEKLY":
        pattern["type"] = "weekly"
        pattern["daysOfWeek"] = [WEEKDAYS[RRULE_DAYS.index(d[-2:])] for d in by_day] or [WEEKDAYS[start.weekday()]]
    elif frequency in ("MONTHLY", "YEARLY"):
        yearly = frequency == "YEARLY"
        if yearly:
            pattern["month"] = int(parts.get("BYMONTH", start.month))
        if relative:
            number = int(relative[0][:-2])
            pattern["type"] = "relativeYearly" if yearly else "relativeMonthly"
            pattern["daysOfWeek"] = [WEEKDAYS[RRULE_DAYS.index(relative[0][-2:])]]
            pattern["index"] = next(name for name, n in INDEXES.items() if n == number)
        else:
            pattern["type"] = "absoluteYearly" if yearly else "absoluteMonthly"
            pattern["dayOfMonth"] = int(parts.get("BYMONTHDAY", start.day))
    else:
        raise ValueError(f"unsupported RRULE frequency {frequency!r}")
    recurrence_range: Json = {"type": "noEnd", "startDate": start.date().isoformat(), "endDate": "0001-01-01",
                              "numberOfOccurrences": 0, "recurrenceTimeZone": ""}
    if "COUNT" in parts:
        recurrence_range.update(type="numbered", numberOfOccurrences=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        until = dt.date(int(parts["UNTIL"][:4]), int(parts["UNTIL"][4:6]), int(parts["UNTIL"][6:8]))
        recurrence_range.update(type="endDate", endDate=until.isoformat())
    return {"pattern": pattern, "range": recurrence_range}


def validate_pattern(recurrence: Json) -> None:
    pattern, recurrence_range = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    if pattern.get("type") not in ("daily", "weekly", "absoluteMonthly", "relativeMonthly",
                                   "absoluteYearly", "relativeYearly"):
        raise bad_request("The recurrence pattern type is invalid.", "ErrorInvalidRecurrence")
    if recurrence_range.get("type") not in ("endDate", "noEnd", "numbered"):
        raise bad_request("The recurrence range type is invalid.", "ErrorInvalidRecurrence")
    if pattern["type"] in ("weekly", "relativeMonthly", "relativeYearly") and not pattern.get("daysOfWeek"):
        raise bad_request("daysOfWeek is required for this recurrence pattern.", "ErrorInvalidRecurrence")


def expand(recurrence: Json, first_start: dt.datetime, low: dt.datetime, high: dt.datetime) -> list[dt.datetime]:
    """Wall-clock starts of the series' occurrences between two wall-clock bounds (inclusive)."""
    pattern, recurrence_range = recurrence["pattern"], recurrence["range"]
    kind = pattern["type"]
    frequency = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "absoluteMonthly": rrule.MONTHLY,
                 "relativeMonthly": rrule.MONTHLY, "absoluteYearly": rrule.YEARLY,
                 "relativeYearly": rrule.YEARLY}[kind]
    weekdays = [rrule.weekdays[WEEKDAYS.index(d.lower())] for d in pattern.get("daysOfWeek") or []]
    options: Json = {"interval": max(1, int(pattern.get("interval") or 1)),
                     "wkst": rrule.weekdays[WEEKDAYS.index((pattern.get("firstDayOfWeek") or "sunday").lower())]}
    if kind == "weekly":
        options["byweekday"] = weekdays
    elif kind in ("relativeMonthly", "relativeYearly"):
        options["byweekday"] = [day(INDEXES[pattern.get("index") or "first"]) for day in weekdays]
    elif kind in ("absoluteMonthly", "absoluteYearly"):
        options["bymonthday"] = int(pattern.get("dayOfMonth") or first_start.day)
    if kind in ("absoluteYearly", "relativeYearly"):
        options["bymonth"] = int(pattern.get("month") or first_start.month)
    if recurrence_range["type"] == "numbered":
        options["count"] = int(recurrence_range["numberOfOccurrences"])
    elif recurrence_range["type"] == "endDate":
        options["until"] = dt.datetime.combine(dt.date.fromisoformat(recurrence_range["endDate"]), dt.time.max)
    rule = rrule.rrule(frequency, dtstart=first_start, **options)
    return list(rule.between(low, high, inc=True))
