"""The days a person can type into any date field (a calendar page, a search, an appointment).

Dates far outside them (a typed year 9999 or 0001) are no one's appointment or email, and the day
arithmetic and time-zone conversions pages do around a date (the next day, the week's Monday, the
day's bounds in UTC) would run off Python's calendar there.
"""

from __future__ import annotations

import datetime as dt

from django import forms

FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2999, 12, 31)
OUT_OF_RANGE = f"Choose a date between {FIRST_DAY.year} and {LAST_DAY.year}."


def in_supported_range(day: dt.date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def validate_supported_date(day: dt.date | None) -> None:
    """A form field's validator: refuses a date outside the supported days, with a message."""
    if day is not None and not in_supported_range(day):
        raise forms.ValidationError(OUT_OF_RANGE)
