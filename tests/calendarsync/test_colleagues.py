"""Colleagues on an appointment: the user's company's other people only (checked on the server),
attendees at their account address when Send invitations is ticked, kept on the appointment either
way; and Find a time's Book this slot filling them in."""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Company, User
from accounts.services import set_working_hours
from calendarsync.models import Appointment
from calendarsync.services import AppointmentInput, create_appointment, update_appointment
from crm.models import Contact, ContactEmail
from tests.conftest import PASSWORD, client_for

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
THURSDAY = dt.date(2031, 6, 5)  # far enough ahead that "now" never cuts into Find a time's week
NOT_OURS = "One of the chosen colleagues is not a person of your company."


def form(**fields: object) -> dict[str, object]:
    return {
        "title": "Crew planning",
        "date": "2031-06-05",
        "start_time": "09:00",
        "end_time": "10:00",
        "location": "",
        "notes": "",
        "show_as": "busy",
        **fields,
    }


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def ticked(page: str, name: str) -> set[str]:
    return set(re.findall(rf'<input type="checkbox" name="{name}" value="([^"]+)"[^>]* checked', page))


def invite_ticked(page: str) -> bool:
    return bool(re.search(r'<input type="checkbox" name="invite"[^>]* checked', page))


@pytest.fixture
def erin(greenleaf: Company) -> User:
    return User.objects.create_user("erin@greenleaf.example", PASSWORD, full_name="Erin Estimator", company=greenleaf)


def meeting(invite: bool) -> AppointmentInput:
    start = dt.datetime.combine(THURSDAY, dt.time(9), CHICAGO)
    return AppointmentInput(
        title="Crew planning",
        start=start,
        end=start + dt.timedelta(hours=1),
        time_zone="America/Chicago",
        invite=invite,
    )


def test_the_form_offers_the_companys_other_people_and_refuses_anyone_else(
    bob: User, alice: User, erin: User, carol: User
) -> None:
    client = client_for(bob)
    page = text(client.get("/calendar/appointments/new/"))
    assert "Alice Admin · alice@greenleaf.example" in page and "Erin Estimator · erin@greenleaf.example" in page
    assert f'value="{alice.pk}"' in page and f'value="{erin.pk}"' in page
    assert f'value="{bob.pk}"' not in page  # the organiser is not their own colleague
    assert "Carol" not in page and f'value="{carol.pk}"' not in page

    for outsider in (str(carol.pk), str(bob.pk), "not-a-person"):
        refused = text(
            client.post("/calendar/appointments/new/", form(colleagues=[str(alice.pk), outsider], invite="on"))
        )
        assert NOT_OURS in refused and "Carol" not in refused
    assert not Appointment.objects.exists()

    # The service refuses them too, whatever its caller checked.
    with pytest.raises(ValidationError, match="another company"):
        create_appointment(owner=bob, data=meeting(invite=True), colleagues=[alice, carol])
    with pytest.raises(ValidationError, match="other than you"):
        create_appointment(owner=bob, data=meeting(invite=True), colleagues=[bob])
    assert not Appointment.objects.exists()


def test_invited_colleagues_are_attendees_at_their_account_address(
    bob: User, alice: User, erin: User, contact: Contact
) -> None:
    client = client_for(bob)
    response = client.post(
        "/calendar/appointments/new/",
        form(colleagues=[str(alice.pk), str(erin.pk)], contacts=[str(contact.pk)], invite="on"),
    )
    assert response.status_code == 302
    appointment = Appointment.objects.get(owner=bob)
    assert appointment.invite
    assert sorted(appointment.attendees) == [
        ["Alice Admin", "alice@greenleaf.example", ""],
        ["Dana Whitfield", "dana@example.com", ""],
        ["Erin Estimator", "erin@greenleaf.example", ""],
    ]
    detail = text(client.get(f"/calendar/appointments/{appointment.pk}/"))
    assert "Alice Admin, Erin Estimator" in detail and "Invited" in detail

    # The edit form shows them ticked; one fewer, and the invitation goes to the other only.
    edit = text(client.get(f"/calendar/appointments/{appointment.pk}/edit/"))
    assert ticked(edit, "colleagues") == {str(alice.pk), str(erin.pk)} and invite_ticked(edit)
    assert (
        client.post(
            f"/calendar/appointments/{appointment.pk}/edit/", form(colleagues=[str(erin.pk)], invite="on")
        ).status_code
        == 302
    )
    appointment.refresh_from_db()
    assert appointment.attendees == [["Erin Estimator", "erin@greenleaf.example", ""]]
    assert list(appointment.colleagues.all()) == [erin]


def test_without_send_invitations_colleagues_are_kept_but_nobody_is_an_attendee(bob: User, alice: User) -> None:
    client = client_for(bob)
    assert client.post("/calendar/appointments/new/", form(colleagues=[str(alice.pk)])).status_code == 302
    appointment = Appointment.objects.get(owner=bob)
    assert not appointment.invite and appointment.attendees == []
    assert list(appointment.colleagues.all()) == [alice]
    assert "Alice Admin" in text(client.get(f"/calendar/appointments/{appointment.pk}/"))
    # A colleague alone is someone to invite (a contact without an address is not).
    assert (
        client.post(
            f"/calendar/appointments/{appointment.pk}/edit/", form(colleagues=[str(alice.pk)], invite="on")
        ).status_code
        == 302
    )
    appointment.refresh_from_db()
    assert appointment.attendees == [["Alice Admin", "alice@greenleaf.example", ""]]


def test_an_edit_keeps_the_answers_already_synced_and_one_address_is_one_attendee(
    bob: User, alice: User, erin: User, greenleaf: Company
) -> None:
    appointment = create_appointment(owner=bob, data=meeting(invite=True), colleagues=[alice])
    # As a sync leaves it: Alice's answer came back from the provider.
    Appointment.objects.filter(pk=appointment.pk).update(
        attendees=[["Alice Admin", "alice@greenleaf.example", "accepted"]]
    )
    appointment.refresh_from_db()
    # A contact who is also at Alice's address does not make a second attendee.
    same_address = Contact.objects.create(company=greenleaf, first_name="Alice", last_name="(work)")
    same_address.emails.create(company=greenleaf, address="Alice@Greenleaf.example", is_primary=True)
    update_appointment(
        appointment=appointment,
        editor=bob,
        data=meeting(invite=True),
        contacts=[same_address],
        colleagues=[alice, erin],
    )
    appointment.refresh_from_db()
    answers = {address.lower(): response for _, address, response in appointment.attendees}
    assert answers == {"alice@greenleaf.example": "accepted", "erin@greenleaf.example": ""}
    # Without colleagues given, an edit keeps them (as it keeps contacts).
    update_appointment(appointment=appointment, editor=bob, data=meeting(invite=True))
    assert set(appointment.colleagues.all()) == {alice, erin}


def test_a_contact_search_keeps_the_colleagues_ticked(bob: User, alice: User, contact: Contact) -> None:
    page = text(
        client_for(bob).post(
            "/calendar/appointments/new/", form(colleagues=[str(alice.pk)], contact_q="dana", find="contacts")
        )
    )
    assert ticked(page, "colleagues") == {str(alice.pk)} and f'value="{contact.pk}"' in page
    assert not Appointment.objects.exists()


def test_book_this_slot_fills_in_the_colleagues_and_ticks_send_invitations(
    bob: User, alice: User, erin: User, carol: User
) -> None:
    set_working_hours(user=alice, days=[3], start=dt.time(14), end=dt.time(16))
    client = client_for(bob)
    page = text(
        client.get(
            "/calendar/find-a-time/",
            {"people": [str(bob.pk), str(alice.pk), str(erin.pk)], "minutes": "60", "date": THURSDAY.isoformat()},
        )
    )
    (link, *_) = re.findall(r'<a class="button" href="([^"]+)">Book this slot</a>', page)
    query = parse_qs(urlsplit(link).query)
    assert query["title"] == ["Meeting with Alice Admin and Erin Estimator"]
    assert set(query["colleagues"]) == {str(alice.pk), str(erin.pk)} and query["invite"] == ["1"]

    opened = text(client.get(link))
    assert ticked(opened, "colleagues") == {str(alice.pk), str(erin.pk)}
    assert invite_ticked(opened)
    assert 'name="start_time" value="14:00:00"' in opened

    # A link naming someone of another company opens the form without them; posting them is refused.
    foreign = text(client.get("/calendar/appointments/new/", {"colleagues": [str(carol.pk), str(alice.pk)]}))
    assert ticked(foreign, "colleagues") == {str(alice.pk)} and "Carol" not in foreign

    # Alone, nobody is filled in and nothing is ticked.
    alone = text(
        client.get("/calendar/find-a-time/", {"people": [str(bob.pk)], "minutes": "60", "date": THURSDAY.isoformat()})
    )
    query = parse_qs(urlsplit(re.findall(r'href="([^"]+)">Book this slot', alone)[0]).query)
    assert "colleagues" not in query and "invite" not in query


def test_more_people_than_the_provider_takes_on_one_event_are_refused(
    bob: User, alice: User, greenleaf: Company
) -> None:
    # Exchange Online takes at most 500 attendees an event: 500 contacts and Alice are one too many.
    contacts = Contact.objects.bulk_create(
        [Contact(company=greenleaf, first_name="Neighbour", last_name=str(n)) for n in range(500)]
    )
    ContactEmail.objects.bulk_create(
        [
            ContactEmail(company=greenleaf, contact=contact, address=f"neighbour{n}@hoa.example", is_primary=True)
            for n, contact in enumerate(contacts)
        ]
    )
    chosen = list(Contact.objects.filter(company=greenleaf).prefetch_related("emails"))
    with pytest.raises(ValidationError, match="at most 500 people; 501 are chosen"):
        create_appointment(owner=bob, data=meeting(invite=True), contacts=chosen, colleagues=[alice])
    assert not Appointment.objects.exists()
    assert create_appointment(owner=bob, data=meeting(invite=True), contacts=chosen).attendees[0][2] == ""


def test_another_companys_user_is_never_linked_whichever_way(bob: User, alice: User, carol: User) -> None:
    appointment = create_appointment(owner=bob, data=meeting(invite=False), colleagues=[alice])
    with pytest.raises(ValidationError, match="another company"), transaction.atomic():
        appointment.colleagues.add(carol)
    with pytest.raises(ValidationError, match="another company"), transaction.atomic():
        carol.appointments_with.add(appointment)
    assert list(appointment.colleagues.all()) == [alice]


def test_the_form_costs_the_same_queries_for_2_or_300_colleagues(bob: User, alice: User, greenleaf: Company) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(bob)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = client.get("/calendar/appointments/new/", {"colleagues": [str(alice.pk)]})
        assert page.status_code == 200 and ticked(text(page), "colleagues") == {str(alice.pk)}
        return len(captured.captured_queries)

    few = queries()
    User.objects.bulk_create(
        [User(email=f"crew{n}@greenleaf.example", full_name=f"Crew {n:03}", company=greenleaf) for n in range(298)]
    )
    assert queries() == few
