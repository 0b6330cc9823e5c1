"""Calendar privacy, decided by one selector and applied in every response: the calendar pages,
the JSON feed, the appointment page, the admin and contact timelines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Company, MailboxConnection, User
from activities.models import Activity
from calendarsync.models import Appointment
from calendarsync.selectors import BusyBlock, visible_appointments
from crm.models import Contact
from sandbox.runner import SandboxProcess
from tests.calendarsync.helpers import change_event, make_event, sync
from tests.conftest import PASSWORD, client_for
from tests.mailboxes import connected_mailbox

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
SECRETS = ("Doctor visit", "Mercy Clinic", "bring insurance card", "nurse@clinic.example")
PRIVATE_CALENDAR_SECRETS = ("Mulch delivery", "1402 Cedar Bend", "use the back gate", "gatecode@cedarbend.example")


@pytest.fixture
def dan(greenleaf: Company) -> User:
    return User.objects.create_user("dan@greenleaf.example", PASSWORD, full_name="Dan Crew", company=greenleaf)


def bob_connection(bob: User, privacy: str, shared_with: tuple[User, ...] = ()) -> MailboxConnection:
    connection = MailboxConnection.objects.create(
        user=bob, company=bob.company, provider="microsoft", mailbox_address=bob.email, state="connected",
        sync_calendar=True, calendar_privacy=privacy,
    )
    connection.shared_with.set(shared_with)
    return connection


def monday() -> dt.date:
    today = timezone.now().astimezone(CHICAGO).date()
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)


@pytest.fixture
def bobs_week(bob: User, contact: Contact) -> dict[str, Appointment]:
    start = dt.datetime.combine(monday() + dt.timedelta(days=1), dt.time(9), CHICAGO)
    activity = Activity.objects.create(company=bob.company, kind=Activity.Kind.APPOINTMENT, subject="Appointment",
                                       occurred_at=start, owner=bob)
    activity.contacts.add(contact)
    normal = Appointment.objects.create(
        company=bob.company, owner=bob, title="Mulch delivery", location="1402 Cedar Bend Dr",
        notes="use the back gate", attendees=[["Gate", "gatecode@cedarbend.example"]], start=start,
        end=start + dt.timedelta(hours=1), time_zone="America/Chicago", origin="aspire", activity=activity,
    )
    private = Appointment.objects.create(
        company=bob.company, owner=bob, title="Doctor visit", location="Mercy Clinic", notes="bring insurance card",
        attendees=[["Nurse", "nurse@clinic.example"]], start=start + dt.timedelta(hours=3),
        end=start + dt.timedelta(hours=4), time_zone="America/Chicago", origin="provider", sensitivity="personal",
        provider_event_id="AAMkPrivate",
    )
    return {"normal": normal, "private": private}


def responses(client: Client, bob: User, appointments: dict[str, Appointment], contact: Contact) -> list[str]:
    """Every response a colleague can ask for about Bob's calendar."""
    day = monday()
    pages = [
        client.get("/calendar/", {"user": str(bob.pk), "view": view, "date": (day + dt.timedelta(days=1)).isoformat()})
        for view in ("day", "week", "month")
    ]
    pages.append(client.get("/calendar/feed.json", {"user": str(bob.pk), "start": f"{day}T00:00:00",
                                                     "end": f"{day + dt.timedelta(days=7)}T00:00:00"}))
    for appointment in appointments.values():
        pages.append(client.get(f"/calendar/appointments/{appointment.pk}/"))
        pages.append(client.get(f"/calendar/appointments/{appointment.pk}/edit/"))
    pages.append(client.get(contact.get_absolute_url()))
    pages.append(client.get("/admin/calendarsync/appointment/"))
    for appointment in appointments.values():
        pages.append(client.get(f"/admin/calendarsync/appointment/{appointment.pk}/change/"))
    pages.append(client.get("/calendar/changes/"))
    return [page.content.decode() for page in pages]


def leaked(texts: list[str], secrets: tuple[str, ...]) -> list[str]:
    return [secret for secret in secrets for text in texts if secret in text]


def test_a_busy_block_carries_no_details_at_all() -> None:
    names = {f.name for f in dataclasses.fields(BusyBlock)}
    assert names == {"start", "end", "all_day", "show_as"}


def test_public_calendar_shows_details_to_colleagues_but_not_provider_private_events(
    bob: User, alice: User, dan: User, bobs_week: dict[str, Appointment], contact: Contact
) -> None:
    bob_connection(bob, "public")
    for colleague in (alice, dan):  # the company admin too: privacy is not an admin setting
        texts = responses(client_for(colleague), bob, bobs_week, contact)
        assert leaked(texts, SECRETS) == []
        assert "Mulch delivery" in texts[1] and "Busy" in texts[1]
        feed = client_for(colleague).get("/calendar/feed.json", {
            "user": str(bob.pk), "start": f"{monday()}T00:00:00", "end": f"{monday() + dt.timedelta(days=7)}T00:00:00",
        }).json()["appointments"]
        assert [item["busy"] for item in feed] == [False, True]
        assert set(feed[1]) == {"busy", "start", "end", "all_day", "show_as"}
    admin_list = client_for(alice).get("/admin/calendarsync/appointment/")
    assert admin_list.status_code == 200 and "Busy" in admin_list.content.decode()
    admin_change = client_for(alice).get(f"/admin/calendarsync/appointment/{bobs_week['private'].pk}/change/")
    assert admin_change.status_code == 200
    timeline = client_for(dan).get(contact.get_absolute_url())
    assert timeline.status_code == 200 and "Appointment" in timeline.content.decode()


def test_private_calendar_shows_only_busy_to_members_not_shared_with(
    bob: User, alice: User, dan: User, bobs_week: dict[str, Appointment], contact: Contact
) -> None:
    bob_connection(bob, "private", shared_with=(dan,))
    alice_texts = responses(client_for(alice), bob, bobs_week, contact)
    assert leaked(alice_texts, SECRETS + PRIVATE_CALENDAR_SECRETS) == []
    assert alice_texts[1].count("Busy") >= 2
    dan_texts = responses(client_for(dan), bob, bobs_week, contact)
    assert leaked(dan_texts, SECRETS) == []
    assert "Mulch delivery" in dan_texts[1]


def test_the_owner_sees_everything_on_their_calendar(bob: User, bobs_week: dict[str, Appointment]) -> None:
    bob_connection(bob, "private")
    page = client_for(bob).get("/calendar/", {"date": (monday() + dt.timedelta(days=1)).isoformat()}).content.decode()
    assert "Mulch delivery" in page and "Doctor visit" in page
    detail = client_for(bob).get(f"/calendar/appointments/{bobs_week['private'].pk}/").content.decode()
    assert all(secret in detail for secret in ("Mercy Clinic", "bring insurance card"))


def test_another_company_sees_nothing(
    bob: User, carol: User, bobs_week: dict[str, Appointment], contact: Contact
) -> None:
    bob_connection(bob, "public")
    client = client_for(carol)
    assert client.get("/calendar/", {"user": str(bob.pk)}).status_code == 404
    assert client.get("/calendar/feed.json", {"user": str(bob.pk), "start": "2026-01-01T00:00:00",
                                              "end": "2026-01-08T00:00:00"}).status_code == 404
    for appointment in bobs_week.values():
        assert client.get(f"/calendar/appointments/{appointment.pk}/").status_code == 404
        assert client.get(f"/calendar/appointments/{appointment.pk}/edit/").status_code == 404
        assert client.post(f"/calendar/appointments/{appointment.pk}/delete/").status_code == 404
    assert visible_appointments(viewer=carol, owner=bob, start=timezone.now() - dt.timedelta(days=30),
                                end=timezone.now() + dt.timedelta(days=30)) == []
    assert leaked(responses(client, bob, bobs_week, contact), SECRETS + PRIVATE_CALENDAR_SECRETS) == []


def test_colleagues_cannot_change_or_delete_anothers_appointments(
    bob: User, alice: User, bobs_week: dict[str, Appointment]
) -> None:
    bob_connection(bob, "public")
    client = client_for(alice)
    normal = bobs_week["normal"]
    assert client.post(f"/calendar/appointments/{normal.pk}/edit/", {"title": "Hijacked"}).status_code == 404
    assert client.post(f"/calendar/appointments/{normal.pk}/delete/").status_code == 404
    normal.refresh_from_db()
    assert normal.title == "Mulch delivery" and normal.push == ""


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_events_marked_private_in_the_provider_are_busy_blocks_for_colleagues(
    provider: str, providers_on_sandbox: SandboxProcess, bob: User, alice: User
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    day = timezone.now().astimezone(CHICAGO).date() + dt.timedelta(days=2)
    make_event(providers_on_sandbox, connection, subject="Doctor visit", location="Mercy Clinic",
               body="bring insurance card", attendees=["nurse@clinic.example"], private=True,
               start=f"{day}T09:00:00", end=f"{day}T10:00:00", time_zone="America/Chicago")
    series = make_event(providers_on_sandbox, connection, subject="Crew standup", start=f"{day}T07:00:00",
                        end=f"{day}T07:15:00", time_zone="America/Chicago", rrule="FREQ=DAILY;COUNT=3")
    sync(connection)
    moved = Appointment.objects.filter(series_id=series["id"]).order_by("start")[1]
    # Later on its own day: Outlook refuses to move an occurrence onto a neighbour's day.
    next_day = day + dt.timedelta(days=1)
    change_event(providers_on_sandbox, connection, moved.provider_event_id, start=f"{next_day}T08:00:00",
                 end=f"{next_day}T08:15:00", subject="Crew standup (moved)")
    sync(connection)
    assert connection.calendar_privacy == "public"
    page = client_for(alice).get("/calendar/", {"user": str(bob.pk), "view": "week", "date": day.isoformat()})
    feed = client_for(alice).get("/calendar/feed.json", {"user": str(bob.pk), "start": f"{day}T00:00:00",
                                                          "end": f"{day + dt.timedelta(days=3)}T00:00:00"})
    texts = [page.content.decode(), feed.content.decode()]
    assert leaked(texts, SECRETS) == []
    assert "Busy" in texts[0]
    items = feed.json()["appointments"]
    shown = [item.get("title", "") for item in items if not item["busy"]]
    assert [item["busy"] for item in items].count(True) == 1
    assert sorted(shown) == ["Crew standup", "Crew standup", "Crew standup (moved)"]
    assert "Doctor visit" in client_for(bob).get("/calendar/", {"date": day.isoformat()}).content.decode()
