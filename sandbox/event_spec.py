"""The control API's neutral event spec (see sandbox/emulator.py), checked once for both emulators.

A malformed spec is a ``ValueError`` naming what is wrong, which the control API answers with 400;
each emulator then applies its provider's own rules (zones, recurrence) and answers their refusals
the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Json = dict[str, Any]

TEXT = ("subject", "body", "location", "start", "end", "time_zone", "show_as", "organizer", "my_response")
FLAGS = ("all_day", "private")
KEYS = frozenset((*TEXT, *FLAGS, "rrule", "attendees", "raw"))
SHOW_AS = ("busy", "free")
# An attendee's answer, in the control API's own words (each emulator writes its provider's value).
RESPONSES = ("accepted", "declined", "tentative", "none")


def check_event_spec(spec: Any, *, partial: bool = False) -> Json:
    """The spec, if it is one: a JSON object of known keys with values of the right kinds, start
    and end readable (dates for an all-day event) and in order. ``partial``: a change, where
    every key is optional."""
    if not isinstance(spec, dict):
        raise ValueError("an event spec must be a JSON object")
    if "raw" in spec:
        # Any JSON value: a listing can hold an item that is not even an object.
        if partial or len(spec) != 1:
            raise ValueError("'raw' (an item served as it is) stands alone, and only for a new event")
        return spec
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ValueError(f"unknown event spec keys: {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    for key in TEXT:
        if key in spec and not isinstance(spec[key], str):
            raise ValueError(f"'{key}' must be a string")
    for key in FLAGS:
        if key in spec and not isinstance(spec[key], bool):
            raise ValueError(f"'{key}' must be true or false")
    if "rrule" in spec and spec["rrule"] is not None and not isinstance(spec["rrule"], str):
        raise ValueError("'rrule' must be a string such as \"FREQ=WEEKLY;COUNT=10\" (empty or null: no recurrence)")
    if spec.get("show_as", "busy") not in SHOW_AS:
        raise ValueError(f"'show_as' must be one of {', '.join(SHOW_AS)}")
    if spec.get("my_response", "none") not in RESPONSES:
        raise ValueError(f"'my_response' must be one of {', '.join(RESPONSES)}")
    if "organizer" in spec and "@" not in spec["organizer"]:
        raise ValueError("'organizer' must be an email address")
    if partial and ("organizer" in spec or "my_response" in spec):
        raise ValueError("'organizer' and 'my_response' are set when the event is made (answer with .../respond)")
    if "time_zone" in spec and not spec["time_zone"].strip():
        raise ValueError("'time_zone' must name a zone, such as \"America/Chicago\"")
    attendees = spec.get("attendees", [])
    if not isinstance(attendees, list) or not all(isinstance(a, str) and "@" in a for a in attendees):
        raise ValueError("'attendees' must be a list of email addresses")
    if not partial:
        missing = [key for key in ("start", "end") if key not in spec]
        if missing:
            raise ValueError(f"an event needs {' and '.join(missing)}")
    all_day = bool(spec.get("all_day"))
    times = {key: _time(key, spec[key], all_day) for key in ("start", "end") if key in spec}
    if len(times) == 2 and times["end"] < times["start"]:
        raise ValueError(f"'end' ({spec['end']}) is before 'start' ({spec['start']})")
    return spec


def _time(key: str, text: str, all_day: bool) -> dt.datetime:
    try:
        if all_day:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        kind = "a date such as 2026-12-01" if all_day else "a date and time such as 2026-12-01T09:00:00"
        raise ValueError(f"'{key}' ({text!r}) must be {kind}") from exc
    if "T" not in text:
        raise ValueError(f"'{key}' ({text!r}) needs a time of day unless 'all_day' is true")
    # Times are wall-clock times in the spec's time_zone; an offset, if written, is dropped for comparing.
    return moment.replace(tzinfo=None)


def check_response(spec: Any) -> tuple[str, str]:
    """An attendee's answer posted to ``.../events/{id}/respond``: (address, response)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("attendee"), str) or "@" not in spec["attendee"]:
        raise ValueError("'attendee' (an email address on the event) is required")
    if spec.get("response") not in RESPONSES:
        raise ValueError(f"'response' must be one of {', '.join(RESPONSES)}")
    return spec["attendee"].strip().lower(), str(spec["response"])
