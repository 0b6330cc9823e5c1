"""The personal iCalendar feed: a user's own calendar as RFC 5545 text, for phones and other apps.

What it holds comes through ``selectors.visible_appointments`` with the owner as the viewer, the
one privacy rule: the owner's own appointments, private ones included (it is their calendar), and
never a colleague's. Built with the ``icalendar`` library, which writes the format's escaping,
line folding and date forms.
"""

from __future__ import annotations

import datetime as dt

import icalendar
from django.utils import timezone

from accounts.models import User

from . import selectors
from .selectors import AppointmentDetails

# The same range the sync keeps: a month back, a year ahead.
FEED_BACK = dt.timedelta(days=30)
FEED_AHEAD = dt.timedelta(days=365)
PRODID = "-//Aspire Sync//Calendar//EN"


def feed_for(owner: User) -> bytes:
    now = timezone.now()
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Aspire: {owner}")
    for item in selectors.visible_appointments(viewer=owner, owner=owner, start=now - FEED_BACK,
                                               end=now + FEED_AHEAD):
        if isinstance(item, AppointmentDetails):  # always, for the owner
            calendar.add_component(_event(item, now))
    return bytes(calendar.to_ical())


def _event(item: AppointmentDetails, now: dt.datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{item.id}@aspire-sync")
    event.add("dtstamp", now)
    if item.all_day:
        # Floating dates: midnight UTC of the first day to midnight UTC of the day after the last.
        event.add("dtstart", item.start.date())
        event.add("dtend", item.end.date())
    else:
        event.add("dtstart", item.start)
        event.add("dtend", item.end)
    event.add("summary", item.title or "(no title)")
    if item.location:
        event.add("location", item.location)
    if item.notes:
        event.add("description", item.notes)
    event.add("class", "PRIVATE" if item.is_private else "PUBLIC")
    event.add("transp", "TRANSPARENT" if item.show_as == "free" else "OPAQUE")
    return event
