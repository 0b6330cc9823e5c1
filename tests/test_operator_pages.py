"""An operator (the Django admin across all companies) belongs to no company: the pages that make
something of a company's (an appointment, a calendar link) refuse them with
a 403 rather than fail with a server error, and nothing is made."""

from __future__ import annotations

from accounts.models import User
from calendarsync.models import Appointment, CalendarFeed
from tests.conftest import client_for


def test_an_operator_is_refused_what_only_company_members_can_make(operator: User) -> None:
    client = client_for(operator)
    client.raise_request_exception = False
    appointment = {
        "title": "Estimate",
        "date": "2026-12-02",
        "start_time": "09:00",
        "end_time": "10:00",
        "show_as": "busy",
    }
    assert client.post("/calendar/appointments/new/", appointment).status_code == 403
    assert client.post("/calendar/link/", {"action": "make"}).status_code == 403
    assert not Appointment.objects.exists() and not CalendarFeed.objects.exists()
    # What only reads is still open to them.
    assert client.get("/calendar/").status_code == 200
    assert client.get("/calendar/find-a-time/", {"minutes": "30"}).status_code == 200
