"""The personal iCalendar link: made and reset in Settings, the owner's own calendar only (private
appointments included, colleagues' never), parsed by the icalendar library; a reset or turned-off
link, or a made-up one, is a 404."""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo
from urllib.parse import urlsplit

import icalendar
from django.test import Client
from django.utils import timezone

from accounts.models import User
from calendarsync.models import CalendarFeed
from calendarsync.services import AppointmentInput, create_appointment
from tests.conftest import client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def soon(title: str, days: int, **extra: object) -> AppointmentInput:
    start = dt.datetime.combine(timezone.localdate(timezone=CHICAGO) + dt.timedelta(days=days), dt.time(9), CHICAGO)
    return AppointmentInput(title=title, start=start, end=start + dt.timedelta(hours=1), time_zone="America/Chicago",
                            **extra)  # type: ignore[arg-type]


def make_link(client: Client, action: str = "make") -> str:
    page = html.unescape(client.post("/calendar/link/", {"action": action}).content.decode())
    match = re.search(r'value="(http://testserver/calendar/personal\.ics\?key=[^"]+)"', page)
    assert match, page[:2000]
    return match.group(1)


def fetch(url: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    response = Client().get(parts.path, {"key": parts.query.removeprefix("key=")})  # no sign-in: apps have none
    return response.status_code, response.content


def test_the_feed_is_the_owners_calendar_with_private_appointments_and_no_colleagues(bob: User, alice: User) -> None:
    create_appointment(owner=bob, data=soon("Mulch estimate", 2, location="1402 Cedar Bend Dr"))
    create_appointment(owner=bob, data=soon("Dentist", 3, private=True))
    create_appointment(owner=alice, data=soon("Alice's crew visit", 2))
    settings_page = client_for(bob).get("/settings/").content.decode()
    assert "Calendar on your phone" in settings_page and "/calendar/link/" in settings_page

    link = make_link(client_for(bob))
    status, body = fetch(link)
    assert status == 200
    # Calendar apps may ask with HEAD before they GET.
    parts = urlsplit(link)
    assert Client().head(parts.path, {"key": parts.query.removeprefix("key=")}).status_code == 200
    calendar = icalendar.Calendar.from_ical(body)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"Mulch estimate", "Dentist"}  # the owner's own, private included; Alice's never
    assert str(events["Mulch estimate"]["location"]) == "1402 Cedar Bend Dr"
    assert events["Mulch estimate"].decoded("dtstart") == soon("x", 2).start
    assert str(events["Dentist"]["class"]) == "PRIVATE"
    assert CalendarFeed.objects.get(owner=bob).key_digest not in body.decode()


def test_resetting_revokes_the_old_link_and_turning_it_off_revokes_all(bob: User) -> None:
    client = client_for(bob)
    first = make_link(client)
    second = make_link(client, "reset")
    assert fetch(first)[0] == 404 and fetch(second)[0] == 200
    client.post("/calendar/link/", {"action": "off"})
    assert fetch(second)[0] == 404
    assert not CalendarFeed.objects.filter(owner=bob).exists()


def test_a_token_gives_only_its_owners_calendar_and_a_made_up_one_nothing(bob: User, alice: User) -> None:
    create_appointment(owner=bob, data=soon("Bob's walk-through", 2))
    create_appointment(owner=alice, data=soon("Alice's walk-through", 2))
    alice_link = make_link(client_for(alice))
    _, body = fetch(alice_link)
    titles = [str(e["summary"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")]
    assert titles == ["Alice's walk-through"]
    assert fetch("http://testserver/calendar/personal.ics?key=not-a-key")[0] == 404
    assert fetch("http://testserver/calendar/personal.ics?key=")[0] == 404
    # Only the digest is stored: the key itself is nowhere in the database.
    key = alice_link.split("key=")[1]
    assert not CalendarFeed.objects.filter(key_digest=key).exists()
