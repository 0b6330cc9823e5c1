"""Appointments with contacts are Activities on those contacts' timelines, without their details."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from accounts.models import User
from activities.models import Activity
from calendarsync.models import Appointment
from calendarsync.services import AppointmentInput, create_appointment, delete_appointment, update_appointment
from crm.models import Contact, Opportunity
from tests.conftest import client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def details(title: str, hour: int) -> AppointmentInput:
    start = dt.datetime(2026, 12, 4, hour, tzinfo=CHICAGO)
    return AppointmentInput(title=title, start=start, end=start + dt.timedelta(hours=1), time_zone="America/Chicago",
                            location="1402 Cedar Bend Dr", notes="gate code 4471")


def test_an_appointment_with_contacts_is_on_their_timeline(
    bob: User, alice: User, contact: Contact, opportunity: Opportunity
) -> None:
    appointment = create_appointment(owner=bob, data=details("Mulch walkthrough", 9), contacts=[contact],
                                     regarding=opportunity)
    activity = Activity.objects.get(appointment=appointment)
    assert activity.kind == Activity.Kind.APPOINTMENT and activity.owner == bob
    assert list(activity.contacts.all()) == [contact] and activity.regarding == opportunity
    assert activity.occurred_at == appointment.start
    timeline = client_for(alice).get(contact.get_absolute_url()).content.decode()
    assert "Appointment" in timeline
    assert "Mulch walkthrough" not in timeline and "gate code 4471" not in timeline

    update_appointment(appointment=appointment, editor=bob, data=details("Mulch walkthrough", 15))
    activity.refresh_from_db()
    assert activity.occurred_at == dt.datetime(2026, 12, 4, 15, tzinfo=CHICAGO)

    delete_appointment(appointment=appointment, editor=bob)  # no calendar connected: gone at once
    assert not Appointment.objects.filter(pk=appointment.pk).exists()
    assert not Activity.objects.filter(pk=activity.pk).exists()


def test_an_appointment_without_contacts_is_no_activity(bob: User) -> None:
    appointment = create_appointment(owner=bob, data=details("Paperwork", 9))
    assert appointment.activity is None and not Activity.objects.exists()
    assert appointment.push == ""  # no calendar connected: nothing to send
