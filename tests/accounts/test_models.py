from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError
from django.test import Client

from accounts.models import Company, User
from activities.models import Activity
from crm.models import Contact
from tests.conftest import PASSWORD


def test_email_is_the_login_and_is_case_insensitive(bob: User) -> None:
    client = Client()
    response = client.post("/login/", {"username": "Bob@Greenleaf.EXAMPLE", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/contacts/").status_code == 200


def test_wrong_password_shows_a_plain_message(bob: User) -> None:
    response = Client().post("/login/", {"username": bob.email, "password": "nope"})
    assert response.status_code == 200
    assert "don't match" in response.content.decode()


def test_create_user_lowercases_the_email(greenleaf: Company) -> None:
    user = User.objects.create_user("Mixed.Case@Greenleaf.Example", PASSWORD, company=greenleaf)
    assert user.email == "mixed.case@greenleaf.example"


def test_database_refuses_a_user_without_a_company_unless_operator(db: None) -> None:
    with pytest.raises(IntegrityError):
        User.objects.bulk_create([User(email="orphan@example.com")])


def test_only_admins_and_operators_reach_the_admin(alice: User, bob: User, operator: User) -> None:
    assert alice.is_staff and operator.is_staff
    assert not bob.is_staff
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get("/admin/").status_code == 302  # to the admin's own sign-in


def test_pages_need_a_signed_in_user(contact: object) -> None:
    response = Client().get("/contacts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_settings_page_saves_name_and_time_zone(bob: User) -> None:
    client = Client()
    client.force_login(bob)
    response = client.post(
        "/settings/", {"profile-full_name": "Bob Builder", "profile-time_zone": "America/Denver"}, follow=True
    )
    assert "Your settings are saved." in response.content.decode()
    bob.refresh_from_db()
    assert (bob.full_name, bob.time_zone) == ("Bob Builder", "America/Denver")


def test_settings_page_refuses_an_unknown_time_zone(bob: User) -> None:
    client = Client()
    client.force_login(bob)
    response = client.post("/settings/", {"profile-full_name": "Bob", "profile-time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    bob.refresh_from_db()
    assert bob.time_zone == "America/Chicago"


def test_dates_show_in_the_viewers_time_zone(bob: User, activity: Activity, contact: Contact) -> None:
    activity.occurred_at = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)
    activity.save(update_fields=["occurred_at"])
    client = Client()
    client.force_login(bob)  # America/Chicago: 15:00 UTC is 10:00 AM CDT
    assert "Jul 1, 2026 10:00 AM" in client.get(contact.get_absolute_url()).content.decode()
    bob.time_zone = "America/New_York"
    bob.save(update_fields=["time_zone"])
    assert "Jul 1, 2026 11:00 AM" in client.get(contact.get_absolute_url()).content.decode()


def test_an_operator_settings_page_has_no_mailbox_section(operator: User) -> None:
    client = Client()
    client.force_login(operator)
    page = client.get("/settings/").content.decode()
    assert "Profile" in page and "Sync Email" not in page
    response = client.post("/settings/", {"profile-full_name": "Ops", "profile-time_zone": "UTC"}, follow=True)
    assert "Your settings are saved." in response.content.decode()
