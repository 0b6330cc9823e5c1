"""A Google Calendar series' ``recurrence`` lines (RRULE, EXRULE, RDATE, EXDATE), checked when the
event is written and expanded into instances when it is listed.

Expansion is in the wall-clock time of the series' own zone, so a 9:00 meeting stays at 9:00 across
a daylight-saving change. A series with COUNT or UNTIL expands to its end, however far; an open-ended
one listed without ``timeMax`` stops ``OPEN_ENDED_HORIZON`` after today (Google documents no figure;
its listing of an endless series is long but finite), so one begun years ago still shows.
Reference: https://developers.google.com/workspace/calendar/api/v3/reference/events (recurrence)
Reference: https://developers.google.com/workspace/calendar/api/guides/recurringevents
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from ..rfc5545 import Rule, RuleError, dateutil_rule, parse_rule, resolve_until
from .common import ApiError, Json, bad_request

UTC = dt.UTC
OPEN_ENDED_HORIZON = dt.timedelta(days=5 * 365)
# A rule must have an instance this soon after the series starts: one with none at all (30 February)
# would otherwise make every listing scan to the year 9999 looking for one.
FIRST_INSTANCE_WITHIN = dt.timedelta(days=30 * 366)


def invalid_recurrence(reason: str) -> ApiError:
    # Google answers a rule it cannot read with 400 "Invalid recurrence rule."; the reason after it
    # is the sandbox's, to say which part was wrong.
    return ApiError(400, "invalid", f"Invalid recurrence rule. {reason}".strip())


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise bad_request(f"Invalid time zone definition: {name}", "timeZone") from exc


def instant(value: Json) -> dt.datetime:
    """The UTC instant an EventDateTime starts at (all-day dates at midnight UTC)."""
    if "date" in value:
        return dt.datetime.combine(dt.date.fromisoformat(value["date"]), dt.time(), UTC)
    return dt.datetime.fromisoformat(value["dateTime"]).astimezone(UTC)


class Series:
    """A series master's recurrence, read and ready to expand. Raises ``ApiError`` (400 "Invalid
    recurrence rule.") for lines Google refuses."""

    def __init__(self, master: Json) -> None:
        start, end = master["start"], master["end"]
        self.master = master
        self.all_day = "date" in start
        self.zone: ZoneInfo | None
        if self.all_day:
            self.zone = None
            self.first = dt.datetime.combine(dt.date.fromisoformat(start["date"]), dt.time())
            self.duration = dt.date.fromisoformat(end["date"]) - dt.date.fromisoformat(start["date"])
        else:
            self.zone = zone(start.get("timeZone") or "UTC")
            self.first = dt.datetime.fromisoformat(start["dateTime"]).astimezone(self.zone)
            self.duration = instant(end) - instant(start)
        self.rules: list[tuple[str, Rule]] = []
        self.dates: list[tuple[str, dt.datetime]] = []
        lines = master.get("recurrence") or []
        if not isinstance(lines, list):
            raise invalid_recurrence("recurrence must be a list of lines.")
        for line in lines:
            self._read(line)
        if not any(kind == "RRULE" for kind, _ in self.rules) and not any(kind == "RDATE" for kind, _ in self.dates):
            raise invalid_recurrence("A recurring event needs an RRULE or RDATE line.")

    def _read(self, line: Any) -> None:
        if not isinstance(line, str):
            raise invalid_recurrence("Each recurrence line must be a string.")
        name, colon, value = line.partition(":")
        kind, *params = name.strip().split(";")
        kind = kind.upper()
        if not colon or not value.strip():
            raise invalid_recurrence(f"{line!r} has no value.")
        try:
            if kind in ("RRULE", "EXRULE"):
                if params:
                    raise RuleError(f"{kind} takes no parameters")
                self.rules.append((kind, parse_rule(value)))
            elif kind in ("EXDATE", "RDATE"):
                self.dates.extend((kind, moment) for moment in self._dates(params, value))
            else:
                # DTSTART and DTEND are not allowed: the event's start and end say when it begins.
                raise RuleError(f"{kind} lines are not allowed in recurrence")
        except (RuleError, ValueError) as exc:
            raise invalid_recurrence(f"{line}: {exc}.") from exc

    def _dates(self, params: list[str], value: str) -> Iterator[dt.datetime]:
        """EXDATE / RDATE values. Those without a Z are floating wall-clock times: they take the
        TZID zone, else the series'."""
        named: dict[str, str] = {}
        for param in params:
            key, equals, param_value = param.partition("=")
            if not equals:
                raise ValueError(f"parameter {param!r} is not NAME=VALUE")
            named[key.strip().upper()] = param_value.strip()
        if named.get("VALUE", "DATE-TIME").upper() not in ("DATE", "DATE-TIME"):
            raise ValueError(f"VALUE={named['VALUE']} is not DATE or DATE-TIME")
        local = zone(named["TZID"]) if "TZID" in named else self.zone
        for text in value.split(","):
            text = text.strip()
            if len(text) == 8:
                day = dt.datetime.strptime(text, "%Y%m%d")  # noqa: DTZ007 - floating, see above
                # On a timed series a date is midnight of that day, which matches no instance at
                # another time: Google reads such an EXDATE and leaves the instance in place.
                yield day if self.all_day else day.replace(tzinfo=local)
            elif text.endswith("Z"):
                moment = dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                yield moment.replace(tzinfo=None) if self.all_day else moment.astimezone(self.zone)
            else:
                moment = dt.datetime.strptime(text, "%Y%m%dT%H%M%S")  # noqa: DTZ007 - floating, see above
                yield moment if self.all_day else moment.replace(tzinfo=local).astimezone(self.zone)

    # -- evaluation --------------------------------------------------------------------------

    @property
    def bounded(self) -> bool:
        return all(rule.bounded for kind, rule in self.rules if kind == "RRULE")

    def _local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(UTC).replace(tzinfo=None) if self.all_day else moment.astimezone(self.zone)

    def _rule(self, rule: Rule, cap: dt.datetime | None, *, uncounted: bool = False) -> rrule.rrule:
        until = resolve_until(rule.until, self.zone) if rule.until else None
        if cap is not None and (rule.count is None or uncounted):
            until = cap if until is None else min(until, cap)
        if uncounted:
            rule = dataclasses.replace(rule, count=None)
        return dateutil_rule(rule, self.first, until=until)

    def rule_set(self, cap: dt.datetime | None) -> rrule.rruleset:
        """Every instance start up to ``cap`` (in the series' zone; None: to the end). Rules without
        COUNT stop at the cap themselves, so a rule that matches nothing more cannot scan on."""
        rules = rrule.rruleset()
        for kind, rule in self.rules:
            (rules.rrule if kind == "RRULE" else rules.exrule)(self._rule(rule, cap))
        for kind, moment in self.dates:
            (rules.rdate if kind == "RDATE" else rules.exdate)(moment)
        return rules

    def check(self) -> None:
        """Refuse, now, a rule that would only fail or never end when listed."""
        cap = self.first + FIRST_INSTANCE_WITHIN
        for kind, rule in self.rules:
            if kind == "RRULE" and next(iter(self._rule(rule, cap, uncounted=True)), None) is None:
                raise invalid_recurrence(f"RRULE {rule_text(rule)} has no instance within 30 years of the "
                                         "event's start.")

    def limit(self, high: dt.datetime | None) -> dt.datetime | None:
        """Where a listing up to ``high`` (None: no timeMax) stops, in the series' zone."""
        if high is not None:
            return self._local(high)
        if self.bounded:
            return None
        now = dt.datetime.now(UTC)
        return self._local(max(now, instant(self.master["start"])) + OPEN_ENDED_HORIZON)

    def instances(self, low: dt.datetime | None, high: dt.datetime | None) -> Iterator[tuple[dt.datetime, Json]]:
        """The instances that end after ``low`` and start before ``high`` (UTC; None: unbounded)."""
        limit = self.limit(high)
        for moment in self.rule_set(limit):
            begin = moment.replace(tzinfo=UTC) if self.all_day else moment.astimezone(UTC)
            if high is not None and begin >= high:
                break
            # Skipped before its resource is built: a listing from today of a series begun long ago.
            if low is not None and self._ends(moment) <= low:
                continue
            yield begin, self.instance(moment)

    def _ends(self, moment: dt.datetime) -> dt.datetime:
        if self.all_day:
            return dt.datetime.combine(moment.date() + self.duration, dt.time(), UTC)
        return (moment + self.duration).astimezone(UTC)

    def has(self, moment: dt.datetime) -> bool:
        """Whether an instance starts exactly at ``moment`` (aware, or naive for all-day)."""
        local = moment if self.all_day else moment.astimezone(self.zone)
        return bool(self.rule_set(local + dt.timedelta(seconds=1)).between(local, local, inc=True))

    def instance(self, moment: dt.datetime) -> Json:
        master, start, end = self.master, self.master["start"], self.master["end"]
        if self.all_day:
            day = moment.date()
            original = {"date": day.isoformat()}
            instance_start, instance_end = original, {"date": (day + self.duration).isoformat()}
            suffix = day.strftime("%Y%m%d")
        else:
            original = {"dateTime": moment.isoformat(), "timeZone": start.get("timeZone", "UTC")}
            instance_start = original
            instance_end = {"dateTime": (moment + self.duration).astimezone(moment.tzinfo).isoformat(),
                            "timeZone": end.get("timeZone", start.get("timeZone", "UTC"))}
            suffix = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        instance = {key: value for key, value in master.items() if key != "recurrence"}
        instance.update(id=f"{master['id']}_{suffix}", recurringEventId=master["id"],
                        originalStartTime=dict(original), start=dict(instance_start), end=dict(instance_end))
        return instance


def rule_text(rule: Rule) -> str:
    return f"FREQ={rule.freq}" + ("" if rule.interval == 1 else f";INTERVAL={rule.interval}")


def instance_start(series_id: str, event_id: str) -> dt.datetime | None:
    """The original start an instance id names (``{series}_{YYYYMMDD}`` or ``..._{YYYYMMDDTHHMMSSZ}``):
    naive for an all-day date, UTC otherwise; None for an id of another form."""
    suffix = event_id.removeprefix(f"{series_id}_")
    try:
        if len(suffix) == 8:
            return dt.datetime.strptime(suffix, "%Y%m%d")  # noqa: DTZ007 - a floating date
        return dt.datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
