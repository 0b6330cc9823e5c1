"""Dates the calendar does not go to (a typed year 9999 or 0001, a mangled link): every calendar
page opens at today instead, the JSON feed refuses the range, and the appointment form says so
and keeps what was typed. Nothing answers with a server error; a mangled list of people is said
once."""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo

import pytest
from django.utils import timezone

from accounts.models import User
from calendarsync.models import Appointment
from tests.conftest import client_for

FAR_DATES = ["9999-12-31", "9999-12-28", "0001-01-01", "1899-12-31", "3000-01-01"]
PAGES = [("/calendar/", view) for view in ("day", "week", "month")] + [
    ("/calendar/team/", "day"),
    ("/calendar/team/", "week"),
    ("/calendar/find-a-time/", ""),
]


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


@pytest.mark.parametrize("far", FAR_DATES)
@pytest.mark.parametrize(("url", "view"), PAGES)
def test_a_far_date_opens_the_calendar_pages_at_today(bob: User, alice: User, url: str, view: str, far: str) -> None:
    client = client_for(bob)
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(bob.time_zone or "UTC")).date()
    params = {"date": far, "view": view, "people": [str(bob.pk), str(alice.pk)], "minutes": "30"}
    response = client.get(url, params)
    assert response.status_code == 200
    shown = response.context.get("anchor") or response.context.get("date")
    assert shown == today


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T00:00", "9999-12-31T23:00"),
        ("0001-01-01T00:00", "0001-01-02T00:00"),
        ("0001-01-01T00:00+14:00", "0001-01-02T00:00+14:00"),
        ("3000-01-01T00:00Z", "3000-01-02T00:00Z"),
    ],
)
def test_the_json_feed_refuses_a_range_outside_the_calendar(bob: User, start: str, end: str) -> None:
    response = client_for(bob).get("/calendar/feed.json", {"start": start, "end": end})
    assert response.status_code == 400
    assert "years the calendar shows" in response.json()["error"]


@pytest.mark.parametrize(
    ("fields"),
    [
        {"date": "9999-12-31", "all_day": "on"},
        {"date": "2026-12-30", "all_day": "on", "end_date": "9999-12-31"},
        {"date": "0001-01-01", "start_time": "09:00", "end_time": "10:00"},
    ],
)
def test_the_appointment_form_refuses_a_far_date_and_keeps_what_was_typed(bob: User, fields: dict[str, str]) -> None:
    data = {"title": "Gutter estimate", "location": "14 Elm St", "notes": "", "show_as": "busy", **fields}
    response = client_for(bob).post("/calendar/appointments/new/", data)
    page = text(response)
    assert response.status_code == 200
    assert "Choose a date between 1900 and 2999." in page
    assert 'value="Gutter estimate"' in page and 'value="14 Elm St"' in page
    assert not Appointment.objects.exists()


def test_a_date_at_the_calendars_edges_still_opens(bob: User) -> None:
    client = client_for(bob)
    for day in ("1900-01-01", "2999-12-31"):
        response = client.get("/calendar/", {"date": day, "view": "month"})
        assert response.status_code == 200 and response.context["anchor"] == dt.date.fromisoformat(day)


@pytest.mark.parametrize("url", ["/calendar/team/", "/calendar/find-a-time/"])
def test_many_mangled_people_are_refused_with_one_message(bob: User, url: str) -> None:
    response = client_for(bob).get(url, {"people": ["not-a-person"] * 999})
    assert response.status_code == 400
    assert text(response).count("One of the chosen people is not a person of your company.") == 1
