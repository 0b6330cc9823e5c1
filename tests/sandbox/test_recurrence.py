"""Each emulator's expansion of recurring series, checked against python-dateutil's RFC 5545
implementation on the rules each provider supports, and the refusals of the rest.

The reference for an RRULE is ``dateutil.rrule.rrulestr`` with the series' start as DTSTART, in the
series' zone. Most rules are RFC 5545's own examples (section 3.8.5.3, DTSTART 1997-09-02 09:00 New
York unless noted), the rest cases the product meets: weekdays, DST changes, series begun years ago,
COUNT and UNTIL far away, all-day series. Google takes any RFC 5545 rule; the sandbox's Graph takes a
rule through its control API only when a patternedRecurrence means exactly the same, so the same
expansion is asked of both. Graph-only semantics (index over several days, a dayOfMonth past the end
of a short month, the first occurrence counted from startDate) are checked with patternedRecurrence
bodies posted through Graph itself, each against the RRULE that means the same.
Reference: https://www.rfc-editor.org/rfc/rfc5545#section-3.8.5.3
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule
from googleapiclient.errors import HttpError
from tzlocal.windows_tz import win_tz

from sandbox.runner import SandboxProcess

from .google_support import connect, create_account, run, service
from .microsoft_client import Graph, graph_for

GOOGLE = "gina@greenleaf-landscaping.com"
MICROSOFT = "mike@acme.test"
NEW_YORK = "America/New_York"
RFC_START = "1997-09-02T09:00:00"


@dataclass(frozen=True)
class Vector:
    name: str
    rule: str
    start: str = RFC_START  # wall-clock, in ``zone``; a date for an all-day series
    zone: str = NEW_YORK
    days: int = 3 * 366  # how far from the start to compare (open-ended rules need a window)
    graph: bool = True  # a patternedRecurrence means the same
    offset_days: int = 0  # compare from this many days after the start (a series begun long ago)

    @property
    def all_day(self) -> bool:
        return "T" not in self.start

    def __str__(self) -> str:
        return self.name


VECTORS = [
    # RFC 5545 section 3.8.5.3
    Vector("daily, 10 occurrences", "FREQ=DAILY;COUNT=10"),
    Vector("daily until 24 December 1997", "FREQ=DAILY;UNTIL=19971224T000000Z"),
    Vector("every other day, forever", "FREQ=DAILY;INTERVAL=2", days=120),
    Vector("every 10 days, 5 occurrences", "FREQ=DAILY;INTERVAL=10;COUNT=5"),
    Vector("every day in January for 3 years (yearly)", "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;"
           "BYDAY=SU,MO,TU,WE,TH,FR,SA", start="1998-01-01T09:00:00", graph=False),
    Vector("every day in January for 3 years (daily)", "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
           start="1998-01-01T09:00:00", graph=False),
    Vector("weekly, 10 occurrences", "FREQ=WEEKLY;COUNT=10"),
    Vector("weekly until 24 December 1997", "FREQ=WEEKLY;UNTIL=19971224T000000Z"),
    Vector("every other week, forever", "FREQ=WEEKLY;INTERVAL=2;WKST=SU", days=400),
    Vector("Tuesday and Thursday for five weeks (until)", "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH"),
    Vector("Tuesday and Thursday for five weeks (count)", "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH"),
    Vector("every other week on Monday, Wednesday, Friday until 24 December",
           "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR", start="1997-09-01T09:00:00"),
    Vector("every other week on Tuesday and Thursday, 8 occurrences",
           "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH"),
    Vector("monthly on the first Friday, 10 occurrences", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
           start="1997-09-05T09:00:00"),
    Vector("monthly on the first Friday until 24 December", "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
           start="1997-09-05T09:00:00"),
    Vector("every other month on the first and last Sunday", "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
           start="1997-09-07T09:00:00", graph=False),
    Vector("monthly on the second-to-last Monday, 6 months", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
           start="1997-09-22T09:00:00", graph=False),
    Vector("monthly on the third-to-last day", "FREQ=MONTHLY;BYMONTHDAY=-3", start="1997-09-28T09:00:00",
           days=200, graph=False),
    Vector("monthly on the 2nd and 15th", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15", graph=False),
    Vector("monthly on the first and last day", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
           start="1997-09-30T09:00:00", graph=False),
    Vector("every 18 months on the 10th to 15th", "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
           start="1997-09-10T09:00:00", graph=False),
    Vector("every Tuesday, every other month", "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU", days=300, graph=False),
    Vector("yearly in June and July", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7", start="1997-06-10T09:00:00", graph=False),
    Vector("every other year in January to March", "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
           start="1997-03-10T09:00:00", days=9 * 366, graph=False),
    Vector("every third year on days 1, 100 and 200", "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
           start="1997-01-01T09:00:00", days=12 * 366, graph=False),
    Vector("every 20th Monday of the year", "FREQ=YEARLY;BYDAY=20MO", start="1997-05-19T09:00:00", graph=False),
    Vector("Monday of ISO week 20", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", start="1997-05-12T09:00:00", graph=False),
    Vector("every Thursday in March", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH", start="1997-03-13T09:00:00", graph=False),
    Vector("every Thursday in June, July and August", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
           start="1997-06-05T09:00:00", graph=False),
    Vector("every Friday the 13th", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", days=5 * 366, graph=False),
    Vector("the first Saturday after the first Sunday", "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
           start="1997-09-13T09:00:00", days=400, graph=False),
    Vector("US presidential election day", "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
           start="1996-11-05T09:00:00", days=13 * 366, graph=False),
    Vector("the third Tuesday, Wednesday or Thursday", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
           start="1997-09-04T09:00:00"),
    Vector("the second-to-last weekday", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
           start="1997-09-29T09:00:00", days=300, graph=False),
    Vector("every 3 hours from 9:00 to 17:00", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z", graph=False),
    Vector("every 15 minutes, 6 occurrences", "FREQ=MINUTELY;INTERVAL=15;COUNT=6", graph=False),
    Vector("every hour and a half, 4 occurrences", "FREQ=MINUTELY;INTERVAL=90;COUNT=4", graph=False),
    Vector("every 20 minutes from 9:00 to 16:40 every day", "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;"
           "BYMINUTE=0,20,40", days=3, graph=False),
    Vector("WKST=MO changes an every-other-week rule", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
           start="1997-08-05T09:00:00"),
    Vector("WKST=SU changes an every-other-week rule", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
           start="1997-08-05T09:00:00"),
    Vector("a day the month lacks is skipped", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5", start="2007-01-15T09:00:00",
           graph=False),
    # what the product meets
    Vector("every weekday, 10 occurrences", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10",
           start="2026-12-01T07:30:00", zone="America/Chicago"),
    Vector("daily on weekdays", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=12", start="2026-12-01T07:30:00",
           zone="America/Chicago"),
    Vector("monthly on the 15th until spring", "FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20270415T235959Z",
           start="2026-12-15T10:00:00", zone="America/Chicago"),
    Vector("the last day of every month", "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=14", start="2026-12-31T16:00:00",
           zone="America/Denver"),
    Vector("the 31st, or the month's last day", "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;COUNT=14",
           start="2027-01-31T16:00:00", zone="America/Denver"),
    Vector("29 February, leap years only", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3", start="2028-02-29T09:00:00",
           zone="Europe/London", days=13 * 366, graph=False),
    Vector("15 March every third year", "FREQ=YEARLY;INTERVAL=3;COUNT=4", start="2027-03-15T09:00:00",
           zone="Europe/London", days=13 * 366),
    Vector("the fourth Thursday of November", "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=5", start="2026-11-26T12:00:00",
           zone="America/Chicago", days=6 * 366),
    Vector("the last Wednesday of November", "FREQ=YEARLY;BYMONTH=11;BYDAY=-1WE;COUNT=4",
           start="2026-11-25T12:00:00", zone="America/Chicago", days=5 * 366),
    Vector("weekly across the start of daylight saving", "FREQ=WEEKLY;COUNT=4", start="2027-03-02T07:00:00",
           zone="America/Chicago"),
    Vector("daily across the end of summer time", "FREQ=DAILY;COUNT=5", start="2026-10-23T08:15:00",
           zone="Europe/Berlin"),
    Vector("weekly, begun seven years ago", "FREQ=WEEKLY;BYDAY=MO,TH", start="2019-01-07T08:00:00",
           zone="America/Chicago", offset_days=7 * 366, days=8 * 366),
    Vector("a trailing semicolon, as Google's exports write it", "FREQ=WEEKLY;COUNT=3;", start="2026-12-02T14:00:00",
           zone="America/New_York"),
    Vector("UNTIL a date on a timed series", "FREQ=DAILY;UNTIL=20261205", start="2026-12-01T18:00:00",
           zone="America/Los_Angeles"),
    Vector("UNTIL a floating time on a timed series", "FREQ=DAILY;UNTIL=20261205T180000", start="2026-12-01T18:00:00",
           zone="America/Los_Angeles", graph=False),
    Vector("an all-day yearly birthday", "FREQ=YEARLY", start="2026-12-24", zone="UTC", days=5 * 366),
    Vector("an all-day weekly series", "FREQ=WEEKLY;COUNT=3", start="2026-12-07", zone="UTC"),
    Vector("600 daily occurrences, no cap", "FREQ=DAILY;COUNT=600", start="2026-12-01T06:00:00", zone="UTC",
           days=601),
    Vector("weekly until ten years on", "FREQ=WEEKLY;UNTIL=20361231T000000Z", start="2026-12-03T09:00:00",
           zone="UTC", offset_days=9 * 366, days=11 * 366),
    Vector("lower-case names", "freq=weekly;count=3;byday=we", start="2026-12-02T14:00:00", graph=False),
    Vector("the second Tuesday every third month", "FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU;COUNT=5",
           start="2026-12-08T10:00:00", zone="America/Chicago", days=2 * 366),
    Vector("the fourth weekend day", "FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=4;COUNT=6", start="2026-12-13T10:00:00",
           zone="America/Chicago"),
    Vector("Friday every fourth week", "FREQ=WEEKLY;INTERVAL=4;BYDAY=FR;COUNT=5", start="2026-12-04T15:00:00",
           zone="Australia/Sydney"),
]


# -- the reference ------------------------------------------------------------------------------

def wall(vector: Vector, text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text if "T" in text else text + "T00:00:00")


def wall_window(vector: Vector) -> tuple[dt.datetime, dt.datetime]:
    """The compared stretch of starts, wall-clock in the series' zone: [low, high)."""
    first = wall(vector, vector.start)
    return first + dt.timedelta(days=vector.offset_days), first + dt.timedelta(days=vector.days)


def window(vector: Vector) -> tuple[dt.datetime, dt.datetime]:
    """The compared stretch, as UTC instants."""
    zone = dt.UTC if vector.all_day else ZoneInfo(vector.zone)
    low, high = wall_window(vector)
    return low.replace(tzinfo=zone).astimezone(dt.UTC), high.replace(tzinfo=zone).astimezone(dt.UTC)


def compared(vector: Vector, starts: list[dt.datetime]) -> list[dt.datetime]:
    """The listed starts in the compared stretch (a listing's window also takes in an instance
    that began just before it and is still going)."""
    low, high = wall_window(vector)
    return [start for start in starts if low <= start < high]


def reference(vector: Vector) -> list[dt.datetime]:
    """dateutil's expansion: wall-clock starts in the window. UNTIL with a date, or a floating
    time, on a timed series is read as Google reads it (the end of that day; that time in the
    series' zone) and written as the UTC UNTIL RFC 5545 wants, which is all dateutil takes."""
    low, high = wall_window(vector)
    if vector.all_day:
        return compared(vector, rrule.rrulestr(vector.rule.rstrip(";"), dtstart=low).between(low, high, inc=True))
    zone = ZoneInfo(vector.zone)
    parts = []
    for part in vector.rule.rstrip(";").split(";"):
        name, _, value = part.partition("=")
        if name.upper() == "UNTIL" and not value.upper().endswith("Z"):
            local = dt.datetime.strptime(value if "T" in value else value + "T235959", "%Y%m%dT%H%M%S")  # noqa: DTZ007
            value = local.replace(tzinfo=zone).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        parts.append(f"{name}={value}")
    dtstart = wall(vector, vector.start).replace(tzinfo=zone)
    found = rrule.rrulestr(";".join(parts), dtstart=dtstart).between(
        low.replace(tzinfo=zone), high.replace(tzinfo=zone), inc=True)
    return compared(vector, [moment.replace(tzinfo=None) for moment in found])


# -- Google -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emptied(sandbox_server: SandboxProcess) -> SandboxProcess:
    """The sandbox, emptied once for this module: its tests each add a series of their own."""
    sandbox_server.control("POST", "/reset")
    return sandbox_server


@pytest.fixture(scope="module")
def google(emptied: SandboxProcess) -> Iterator[Any]:
    sandbox_server = emptied
    create_account(sandbox_server, GOOGLE)
    client = service(sandbox_server, connect(sandbox_server, GOOGLE), "calendar")
    yield client
    client.close()


def google_times(vector: Vector, end_offset: dt.timedelta) -> tuple[dict[str, str], dict[str, str]]:
    if vector.all_day:
        start = dt.date.fromisoformat(vector.start)
        return {"date": start.isoformat()}, {"date": (start + dt.timedelta(days=1)).isoformat()}
    start_wall = wall(vector, vector.start)
    return ({"dateTime": start_wall.isoformat(), "timeZone": vector.zone},
            {"dateTime": (start_wall + end_offset).isoformat(), "timeZone": vector.zone})


def google_instances(calendar: Any, series_id: str, vector: Vector) -> list[dt.datetime]:
    low, high = window(vector)
    starts: list[dt.datetime] = []
    page_token = None
    while True:
        page = run(calendar.events().instances(calendarId="primary", eventId=series_id, pageToken=page_token,
                                               timeMin=low.isoformat(), timeMax=high.isoformat(), maxResults=2500))
        for item in page["items"]:
            if "date" in item["start"]:
                starts.append(dt.datetime.fromisoformat(item["start"]["date"]))
            else:
                starts.append(dt.datetime.fromisoformat(item["start"]["dateTime"])
                              .astimezone(ZoneInfo(vector.zone)).replace(tzinfo=None))
        page_token = page.get("nextPageToken")
        if not page_token:
            return compared(vector, starts)


@pytest.mark.parametrize("vector", VECTORS, ids=str)
def test_google_expands_as_rfc_5545_does(google: Any, vector: Vector) -> None:
    expected = reference(vector)
    assert expected, "a vector that expands to nothing checks nothing"
    start, end = google_times(vector, dt.timedelta(minutes=30))
    series = run(google.events().insert(calendarId="primary", body={
        "summary": vector.name, "start": start, "end": end, "recurrence": [f"RRULE:{vector.rule}"]}))
    assert google_instances(google, series["id"], vector) == expected


# -- Graph, through the control API's RRULE --------------------------------------------------------

@pytest.fixture(scope="module")
def graph(emptied: SandboxProcess) -> Graph:
    return graph_for(emptied, MICROSOFT)


def graph_instances(graph: Graph, series_id: str, vector: Vector) -> list[dt.datetime]:
    low, high = window(vector)
    query = f"startDateTime={low:%Y-%m-%dT%H:%M:%SZ}&endDateTime={high:%Y-%m-%dT%H:%M:%SZ}"
    headers = {"Prefer": f'outlook.timezone="{vector.zone}", odata.maxpagesize=1000'}
    items, _ = graph.pages(f"me/events/{series_id}/instances?{query}", headers=headers)
    return compared(vector, [dt.datetime.fromisoformat(item["start"]["dateTime"].split(".")[0]) for item in items])


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.graph], ids=str)
def test_graph_expands_a_translated_rule_as_rfc_5545_does(
    sandbox_server: SandboxProcess, graph: Graph, vector: Vector
) -> None:
    expected = reference(vector)
    assert expected
    start = wall(vector, vector.start)
    end = start + (dt.timedelta(days=1) if vector.all_day else dt.timedelta(minutes=30))
    spec: dict[str, Any] = {"subject": vector.name, "rrule": vector.rule, "time_zone": vector.zone,
                            "start": vector.start, "end": end.date().isoformat() if vector.all_day else end.isoformat()}
    if vector.all_day:
        spec["all_day"] = True
    series = sandbox_server.control("POST", f"/accounts/microsoft/{MICROSOFT}/events", json=spec)
    assert graph_instances(graph, series["id"], vector) == expected


# -- Graph's own patternedRecurrence -----------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    """A patternedRecurrence posted through Graph, and the RRULE (with its own DTSTART, the first
    occurrence Graph's pattern gives) that means the same."""

    name: str
    pattern: dict[str, Any]
    range: dict[str, Any]
    start: str  # the event's start, wall-clock in ``zone``
    first: str  # the first occurrence, by Graph's rules: the RRULE's DTSTART
    rule: str
    zone: str = "Eastern Standard Time"
    days: int = 2 * 366

    def __str__(self) -> str:
        return self.name


def weekly(days: list[str], interval: int = 1, first_day: str = "sunday") -> dict[str, Any]:
    return {"type": "weekly", "interval": interval, "daysOfWeek": days, "firstDayOfWeek": first_day}


def numbered(start: str, count: int) -> dict[str, Any]:
    return {"type": "numbered", "startDate": start[:10], "numberOfOccurrences": count}


PATTERNS = [
    # Reference: https://learn.microsoft.com/en-us/graph/outlook-schedule-recurring-events (its examples)
    Pattern("first Thursday of every other month, from 29 August: September first",
            {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["Thursday"], "index": "first"},
            {"type": "noEnd", "startDate": "2017-08-29"}, "2017-08-29T14:00:00", "2017-09-07T14:00:00",
            "FREQ=MONTHLY;INTERVAL=2;BYDAY=1TH"),
    Pattern("every Monday from 4 September to the end of the year: last on 25 December",
            weekly(["Monday"]), {"type": "endDate", "startDate": "2017-09-04", "endDate": "2017-12-31"},
            "2017-09-04T13:00:00", "2017-09-04T13:00:00", "FREQ=WEEKLY;BYDAY=MO;UNTIL=20180101T045959Z"),
    Pattern("the first Thursday or Friday of every month",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["thursday", "friday"], "index": "first"},
            numbered("2026-12-03", 8), "2026-12-03T09:00:00", "2026-12-03T09:00:00",
            "FREQ=MONTHLY;BYDAY=TH,FR;BYSETPOS=1;COUNT=8"),
    Pattern("the last weekday of every month",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday",
                                                                     "friday"], "index": "last"},
            numbered("2026-12-31", 12), "2026-12-31T17:00:00", "2026-12-31T17:00:00",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=12"),
    Pattern("the second weekend day of every month",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["saturday", "sunday"], "index": "second"},
            numbered("2026-12-01", 6), "2026-12-01T10:00:00", "2026-12-06T10:00:00",
            "FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=2;COUNT=6"),
    Pattern("day 31 of every month falls on each month's last day",
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}, numbered("2027-01-31", 12),
            "2027-01-31T08:00:00", "2027-01-31T08:00:00", "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;COUNT=12"),
    Pattern("day 30 of every month, February on the 28th",
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 30}, numbered("2026-12-30", 4),
            "2026-12-30T08:00:00", "2026-12-30T08:00:00", "FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=-1;COUNT=4"),
    Pattern("29 February every year, the 28th in other years",
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2}, numbered("2028-02-29", 5),
            "2028-02-29T12:00:00", "2028-02-29T12:00:00", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1;COUNT=5",
            days=6 * 366),
    Pattern("the 15th of every third month, from the 20th: the next month's 15th first",
            {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15}, numbered("2026-12-20", 4),
            "2026-12-20T09:00:00", "2027-01-15T09:00:00", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15;COUNT=4"),
    Pattern("every other Monday, from a Thursday: the next Monday first",
            weekly(["monday"], interval=2), numbered("2026-12-03", 5), "2026-12-03T07:00:00", "2026-12-07T07:00:00",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU;COUNT=5"),
    Pattern("every other Sunday and Monday, weeks from Sunday",
            weekly(["sunday", "monday"], interval=2, first_day="sunday"), numbered("2026-12-06", 6),
            "2026-12-06T07:00:00", "2026-12-06T07:00:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,MO;WKST=SU;COUNT=6"),
    Pattern("every other Sunday and Monday, weeks from Monday",
            weekly(["sunday", "monday"], interval=2, first_day="monday"), numbered("2026-12-06", 6),
            "2026-12-06T07:00:00", "2026-12-06T07:00:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,MO;WKST=MO;COUNT=6"),
    Pattern("the last Wednesday of November",
            {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["wednesday"], "index": "last", "month": 11},
            numbered("2026-11-25", 4), "2026-11-25T12:00:00", "2026-11-25T12:00:00",
            "FREQ=YEARLY;BYMONTH=11;BYDAY=-1WE;COUNT=4", days=5 * 366),
    Pattern("the second Thursday or Friday of November every 3 years",
            {"type": "relativeYearly", "interval": 3, "daysOfWeek": ["thursday", "friday"], "index": "second",
             "month": 11}, numbered("2026-11-01", 3), "2026-11-01T12:00:00", "2026-11-06T12:00:00",
            "FREQ=YEARLY;INTERVAL=3;BYMONTH=11;BYDAY=TH,FR;BYSETPOS=2;COUNT=3", days=8 * 366),
    Pattern("15 March every 3 years", {"type": "absoluteYearly", "interval": 3, "dayOfMonth": 15, "month": 3},
            {"type": "noEnd", "startDate": "2027-03-15"}, "2027-03-15T09:00:00", "2027-03-15T09:00:00",
            "FREQ=YEARLY;INTERVAL=3;BYMONTH=3;BYMONTHDAY=15", days=10 * 366),
    Pattern("every 3 days until a day the pattern skips", {"type": "daily", "interval": 3},
            {"type": "endDate", "startDate": "2026-12-01", "endDate": "2026-12-15"}, "2026-12-01T09:00:00",
            "2026-12-01T09:00:00", "FREQ=DAILY;INTERVAL=3;UNTIL=20261216T045959Z"),
    Pattern("every weekday, numbered from the first occurrence", weekly(["monday", "tuesday", "wednesday",
                                                                       "thursday", "friday"]),
            numbered("2026-12-05", 7), "2026-12-05T08:00:00", "2026-12-07T08:00:00",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;WKST=SU;COUNT=7", zone="Central Standard Time"),
]


@pytest.mark.parametrize("case", PATTERNS, ids=str)
def test_graph_expands_patterned_recurrence_as_graph_means_it(graph: Graph, case: Pattern) -> None:
    zone = ZoneInfo(win_tz[case.zone])
    start = dt.datetime.fromisoformat(case.start)
    created = graph.ok("POST", "me/events", json={
        "subject": case.name,
        "start": {"dateTime": case.start, "timeZone": case.zone},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).isoformat(), "timeZone": case.zone},
        "recurrence": {"pattern": case.pattern, "range": case.range},
    })
    assert created["type"] == "seriesMaster"
    low = start.replace(tzinfo=zone)
    high = low + dt.timedelta(days=case.days)
    expected = [m.replace(tzinfo=None) for m in rrule.rrulestr(
        case.rule, dtstart=dt.datetime.fromisoformat(case.first).replace(tzinfo=zone)).between(low, high, inc=True)]
    assert expected
    query = (f"startDateTime={low.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
             f"&endDateTime={high.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}")
    items, _ = graph.pages(f"me/events/{created['id']}/instances?{query}",
                           headers={"Prefer": f'outlook.timezone="{case.zone}", odata.maxpagesize=1000'})
    assert [dt.datetime.fromisoformat(i["start"]["dateTime"].split(".")[0]) for i in items] == expected
    assert {i["start"]["timeZone"] for i in items} == {case.zone}


# -- Google: no cap on what a rule says -------------------------------------------------------------

def list_instances(calendar: Any, **params: Any) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = run(calendar.events().list(calendarId="primary", singleEvents=True, maxResults=2500,
                                          pageToken=page_token, **params))
        items += page["items"]
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, page["nextSyncToken"]


@pytest.fixture(scope="module")
def google_alone(emptied: SandboxProcess) -> Iterator[Any]:
    """A calendar of its own, without the many series the vectors leave in the other one."""
    create_account(emptied, "gus@greenleaf-landscaping.com")
    client = service(emptied, connect(emptied, "gus@greenleaf-landscaping.com"), "calendar")
    yield client
    client.close()


def test_google_lists_every_instance_of_a_long_series_without_a_time_max(google_alone: Any) -> None:
    google = google_alone
    series = run(google.events().insert(calendarId="primary", body={
        "summary": "Daily log", "recurrence": ["RRULE:FREQ=DAILY;COUNT=1500"],
        "start": {"dateTime": "2030-01-01T06:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T06:10:00", "timeZone": "UTC"}}))
    items, _ = list_instances(google, timeMin="2029-12-31T00:00:00Z")
    mine = [i for i in items if i.get("recurringEventId") == series["id"]]
    assert len(mine) == 1500 and mine[-1]["start"]["dateTime"].startswith("2034-02-08")


def test_google_shows_todays_instances_of_an_open_ended_series_begun_years_ago(google_alone: Any) -> None:
    google = google_alone
    today = dt.datetime.now(dt.UTC).date()
    first = today.replace(year=today.year - 8) - dt.timedelta(days=today.weekday())  # a Monday
    series = run(google.events().insert(calendarId="primary", body={
        "summary": "Weekly crew meeting", "recurrence": ["RRULE:FREQ=WEEKLY"],
        "start": {"dateTime": f"{first}T07:00:00", "timeZone": "America/Chicago"},
        "end": {"dateTime": f"{first}T08:00:00", "timeZone": "America/Chicago"}}))
    _, token = list_instances(google, timeMin=f"{today}T00:00:00Z")
    run(google.events().patch(calendarId="primary", eventId=series["id"], body={"summary": "Crew meeting"}))
    # An incremental listing has no timeMax: the changed series comes back as its instances to come.
    changed, _ = list_instances(google, syncToken=token)
    upcoming = [i for i in changed if i.get("recurringEventId") == series["id"]
                and dt.datetime.fromisoformat(i["start"]["dateTime"]).date() >= today]
    assert len(upcoming) >= 52 and {i["summary"] for i in upcoming} == {"Crew meeting"}


# -- refusals -----------------------------------------------------------------------------------------

GOOGLE_REFUSED = [
    ("an unknown frequency", ["RRULE:FREQ=FORTNIGHTLY"]),
    ("no FREQ", ["RRULE:COUNT=5"]),
    ("COUNT and UNTIL together", ["RRULE:FREQ=DAILY;COUNT=3;UNTIL=20301231T000000Z"]),
    ("a day of the month out of range", ["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"]),
    ("a numbered weekday in a weekly rule", ["RRULE:FREQ=WEEKLY;BYDAY=2MO"]),
    ("BYWEEKNO outside a yearly rule", ["RRULE:FREQ=DAILY;BYWEEKNO=3"]),
    ("BYMONTHDAY in a weekly rule", ["RRULE:FREQ=WEEKLY;BYMONTHDAY=1"]),
    ("BYYEARDAY in a monthly rule", ["RRULE:FREQ=MONTHLY;BYYEARDAY=100"]),
    ("BYSETPOS alone", ["RRULE:FREQ=DAILY;BYSETPOS=1"]),
    ("a rule with no instance at all (30 February)", ["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"]),
    ("an empty rule part", ["RRULE:FREQ=DAILY;;COUNT=2"]),
    ("COUNT of zero", ["RRULE:FREQ=DAILY;COUNT=0"]),
    ("a negative interval", ["RRULE:FREQ=DAILY;INTERVAL=-1"]),
    ("a part given twice", ["RRULE:FREQ=DAILY;COUNT=3;COUNT=4"]),
    ("a DTSTART line", ["DTSTART:20301201T090000Z", "RRULE:FREQ=DAILY;COUNT=2"]),
    ("an UNTIL that is not a date", ["RRULE:FREQ=DAILY;UNTIL=2030-12-31"]),
    ("an unknown week start", ["RRULE:FREQ=WEEKLY;WKST=XX"]),
    ("a sixth Monday of the month", ["RRULE:FREQ=MONTHLY;BYDAY=6MO"]),
    ("an EXDATE that is not a date", ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE:tomorrow"]),
    ("an unknown rule part", ["RRULE:FREQ=DAILY;X-SOMETIMES=1"]),
    ("a line that is not text", [5]),
    ("only an EXDATE", ["EXDATE:20301202T090000Z"]),
]


@pytest.mark.parametrize(("what", "recurrence"), GOOGLE_REFUSED, ids=[w for w, _ in GOOGLE_REFUSED])
def test_google_refuses_a_rule_it_cannot_expand_when_it_is_written(
    google: Any, what: str, recurrence: list[Any]
) -> None:
    body = {"summary": what, "recurrence": recurrence, "start": {"dateTime": "2030-12-02T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-12-02T10:00:00", "timeZone": "UTC"}}
    with pytest.raises(HttpError) as raised:
        google.events().insert(calendarId="primary", body=body).execute()
    assert raised.value.status_code == 400
    assert raised.value.error_details[0]["reason"] == "invalid"
    assert raised.value.error_details[0]["message"].startswith("Invalid recurrence rule.")
    # Nothing was stored: listing the calendar still works, and holds no such event.
    listed = run(google.events().list(calendarId="primary", q=what, timeMin="2030-12-01T00:00:00Z"))
    assert what not in {item.get("summary") for item in listed["items"]}


GRAPH_INEXPRESSIBLE = [
    ("a fifth Monday", "FREQ=MONTHLY;BYDAY=5MO", "first to fourth or last"),
    ("the second-to-last Monday", "FREQ=MONTHLY;BYDAY=-2MO", "first to fourth or last"),
    ("two weekdays a month", "FREQ=MONTHLY;BYDAY=1MO,3MO", "one weekday position a month"),
    ("week numbers", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "nothing for BYWEEKNO"),
    ("days of the year", "FREQ=YEARLY;BYYEARDAY=100", "nothing for BYYEARDAY"),
    ("daily in some months", "FREQ=DAILY;BYMONTH=1", "with BYMONTH"),
    ("hourly", "FREQ=HOURLY;COUNT=3", "not FREQ=HOURLY"),
    ("two days of the month", "FREQ=MONTHLY;BYMONTHDAY=2,15", "BYMONTHDAY=2,15"),
    ("the 31st, skipping short months", "FREQ=MONTHLY;BYMONTHDAY=31", "skips months"),
    ("the third-to-last day", "FREQ=MONTHLY;BYMONTHDAY=-3", "BYMONTHDAY=-3"),
    ("two months a year", "FREQ=YEARLY;BYMONTH=6,7", "not several"),
    ("the second-to-last weekday", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2", "BYSETPOS=-2"),
    ("a start that is not an occurrence", "FREQ=WEEKLY;BYDAY=MO", "not an occurrence"),
    ("hours of the day", "FREQ=DAILY;BYHOUR=9,10", "nothing for BYHOUR"),
    ("the 20th Monday of the year", "FREQ=YEARLY;BYDAY=20MO", "needs BYMONTH"),
    ("every Tuesday of the month", "FREQ=MONTHLY;BYDAY=TU", "needs one BYSETPOS"),
    ("every other day, on Mondays", "FREQ=DAILY;INTERVAL=2;BYDAY=MO", "BYDAY and an INTERVAL"),
    ("not a rule", "FREQ=SOMETIMES", "not a frequency"),
    ("29 February, leap years only", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "skips months"),
    ("COUNT and UNTIL", "FREQ=DAILY;COUNT=2;UNTIL=20301231T000000Z", "cannot both"),
]


@pytest.mark.parametrize(("what", "rule", "reason"), GRAPH_INEXPRESSIBLE, ids=[w for w, _, _ in GRAPH_INEXPRESSIBLE])
def test_graph_control_api_refuses_a_rule_outlook_cannot_express_with_the_reason(
    sandbox_server: SandboxProcess, graph: Graph, what: str, rule: str, reason: str
) -> None:
    start = "2030-12-03T09:00:00"  # a Tuesday
    response = sandbox_server.control_response("POST", f"/accounts/microsoft/{MICROSOFT}/events", json={
        "subject": what, "rrule": rule, "start": start, "end": "2030-12-03T10:00:00", "time_zone": "UTC"})
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]


def post_series(graph: Graph, recurrence: Any, start: str = "2030-12-03T09:00:00") -> Any:
    begin = dt.datetime.fromisoformat(start)
    return graph.post("me/events", json={
        "subject": "Series", "recurrence": recurrence,
        "start": {"dateTime": start, "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": (begin + dt.timedelta(hours=1)).isoformat(), "timeZone": "Pacific Standard Time"}})


WEEKLY = {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]}
NO_END = {"type": "noEnd", "startDate": "2030-12-03"}
GRAPH_REFUSED = [
    ("index past fourth", {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
     NO_END, "RequestBodyRead"),
    ("a day that is not one", {**WEEKLY, "daysOfWeek": ["funday"]}, NO_END, "RequestBodyRead"),
    ("an unknown pattern type", {"type": "hourly", "interval": 1}, NO_END, "RequestBodyRead"),
    ("weekly without days", {"type": "weekly", "interval": 1}, NO_END, "ErrorCalendarInvalidRecurrence"),
    ("interval zero", {**WEEKLY, "interval": 0}, NO_END, "ErrorCalendarOutOfRange"),
    ("weekly every 100 weeks", {**WEEKLY, "interval": 100}, NO_END, "ErrorCalendarOutOfRange"),
    ("day 32", {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 32}, NO_END, "ErrorCalendarOutOfRange"),
    ("month 13", {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 3, "month": 13}, NO_END,
     "ErrorCalendarOutOfRange"),
    ("absolute monthly without a day", {"type": "absoluteMonthly", "interval": 1}, NO_END, "ErrorCalendarOutOfRange"),
    ("an interval that is text", {**WEEKLY, "interval": "two"}, NO_END, "RequestBodyRead"),
    ("an ignored property with a bad value", {"type": "daily", "interval": 1, "firstDayOfWeek": "someday"}, NO_END,
     "RequestBodyRead"),
    ("numbered with no occurrences", WEEKLY, {"type": "numbered", "startDate": "2030-12-03",
                                              "numberOfOccurrences": 0}, "ErrorCalendarOutOfRange"),
    ("an end date range without an end date", WEEKLY, {"type": "endDate", "startDate": "2030-12-03"},
     "ErrorInvalidRecurrenceRange"),
    ("an end before the start", WEEKLY, {"type": "endDate", "startDate": "2030-12-03", "endDate": "2030-12-01"},
     "ErrorInvalidRecurrenceRange"),
    ("a startDate that is not the event's", WEEKLY, {"type": "noEnd", "startDate": "2030-12-10"},
     "ErrorInvalidRecurrenceRange"),
    ("no startDate", WEEKLY, {"type": "noEnd"}, "ErrorInvalidRecurrenceRange"),
    ("an end after 4500", WEEKLY, {"type": "endDate", "startDate": "2030-12-03", "endDate": "4501-01-01"},
     "ErrorRecurrenceEndDateTooBig"),
    ("a range with no occurrence", {**WEEKLY, "daysOfWeek": ["monday"]},
     {"type": "endDate", "startDate": "2030-12-03", "endDate": "2030-12-05"}, "ErrorRecurrenceHasNoOccurrence"),
    ("an unknown recurrence time zone", WEEKLY, {**NO_END, "recurrenceTimeZone": "Nowhere Standard Time"},
     "TimeZoneNotSupportedException"),
    ("an unknown range type", WEEKLY, {"type": "forever", "startDate": "2030-12-03"}, "RequestBodyRead"),
]


@pytest.mark.parametrize(("what", "pattern", "recurrence_range", "code"), GRAPH_REFUSED,
                         ids=[w for w, _, _, _ in GRAPH_REFUSED])
def test_graph_refuses_a_pattern_it_cannot_use_in_its_error_shape(
    graph: Graph, what: str, pattern: dict[str, Any], recurrence_range: dict[str, Any], code: str
) -> None:
    response = post_series(graph, {"pattern": pattern, "range": recurrence_range})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_graph_refuses_a_recurrence_without_a_range(graph: Graph) -> None:
    response = post_series(graph, {"pattern": WEEKLY})
    assert response.status_code == 400 and response.json()["error"]["code"] == "ErrorCalendarInvalidRecurrence"


# -- Graph's Windows time zones ---------------------------------------------------------------------

def test_graph_takes_every_windows_zone_name_in_cldr(graph: Graph) -> None:
    local = dt.datetime(2030, 7, 1, 9, 0)
    for windows_name, iana_name in sorted(win_tz.items()):
        created = graph.post("me/events", headers={"Prefer": 'outlook.timezone="UTC"'}, json={
            "subject": windows_name,
            "start": {"dateTime": local.isoformat(), "timeZone": windows_name},
            "end": {"dateTime": (local + dt.timedelta(hours=1)).isoformat(), "timeZone": windows_name}})
        assert created.status_code == 201, (windows_name, created.text)
        expected = local.replace(tzinfo=ZoneInfo(iana_name)).astimezone(dt.UTC).replace(tzinfo=None)
        assert created.json()["start"]["dateTime"] == expected.strftime("%Y-%m-%dT%H:%M:%S.0000000"), windows_name
        assert created.json()["originalStartTimeZone"] == windows_name
    assert len(win_tz) >= 140
