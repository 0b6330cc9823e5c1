"""Working hours in User Settings: saved when right, refused with a clear message when not, and
seen (not changed) by the company admin."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import NO_WORK_DAYS, WORK_ENDS_BEFORE_START, User
from accounts.services import set_working_hours
from tests.conftest import client_for
from tests.mailboxes import settings_form


def hours_form(user: User, days: list[int], start: str, end: str, **sync: object) -> dict[str, object]:
    return {
        **settings_form(user, **sync),
        "hours-work_days": [str(day) for day in days],
        "hours-work_start": start,
        "hours-work_end": end,
    }


def page_of(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def checked_days(page: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="hours-work_days" value="(\d)"[^>]* checked', page)


def test_a_new_user_works_monday_to_friday_eight_to_five(bob: User) -> None:
    page = page_of(client_for(bob).get("/settings/"))
    assert "Working hours" in page
    assert checked_days(page) == ["0", "1", "2", "3", "4"]
    assert 'name="hours-work_start" value="08:00"' in page and 'name="hours-work_end" value="17:00"' in page


def test_working_hours_are_saved_from_user_settings(bob: User) -> None:
    client = client_for(bob)
    response = client.post("/settings/", hours_form(bob, [0, 1, 2, 3], "09:30", "15:00"))
    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.work_days, bob.work_start, bob.work_end) == ([0, 1, 2, 3], dt.time(9, 30), dt.time(15))
    page = page_of(client.get("/settings/"))
    assert checked_days(page) == ["0", "1", "2", "3"]
    assert 'name="hours-work_start" value="09:30"' in page and 'name="hours-work_end" value="15:00"' in page
    # A weekend shift is a working week too.
    assert client.post("/settings/", hours_form(bob, [5, 6], "07:00", "12:00")).status_code == 302
    bob.refresh_from_db()
    assert bob.work_days == [5, 6] and bob.working_hours_label == "Sat, Sun, 7:00 AM\u201312:00 PM"


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        ([0, 1, 2, 3, 4], "17:00", "09:00", "Day ends: The working day must end after it starts."),
        ([0, 1, 2, 3, 4], "09:00", "09:00", "Day ends: The working day must end after it starts."),
        ([], "09:00", "17:00", "Working days: Choose at least one working day."),
        ([7], "09:00", "17:00", "Working days: Select a valid choice. 7 is not one of the available choices."),
        ([0], "nine", "17:00", "Day starts: Enter a valid time."),
    ],
)
def test_bad_working_hours_are_refused_and_nothing_is_saved(
    bob: User, days: list[int], start: str, end: str, message: str
) -> None:
    sent = hours_form(bob, days, start, end)
    sent["profile-full_name"] = "Robert Staff"
    response = client_for(bob).post("/settings/", sent)
    assert response.status_code == 200
    page = page_of(response)
    assert "Nothing was saved. Please correct:" in page and f"<li>{message}</li>" in page
    bob.refresh_from_db()
    assert (bob.full_name, bob.work_days, bob.work_start, bob.work_end) == (
        "Bob Staff",
        [0, 1, 2, 3, 4],
        dt.time(8),
        dt.time(17),
    )


def test_a_settings_post_without_working_hours_leaves_them_as_they_are(bob: User) -> None:
    set_working_hours(user=bob, days=[1, 2], start=dt.time(10), end=dt.time(14))
    assert client_for(bob).post("/settings/", settings_form(bob)).status_code == 302
    bob.refresh_from_db()
    assert (bob.work_days, bob.work_start, bob.work_end) == ([1, 2], dt.time(10), dt.time(14))


def test_the_service_and_the_database_refuse_a_day_that_ends_before_it_starts(bob: User) -> None:
    with pytest.raises(ValidationError, match=re.escape(WORK_ENDS_BEFORE_START)):
        set_working_hours(user=bob, days=[0], start=dt.time(12), end=dt.time(11))
    with pytest.raises(ValidationError, match=re.escape(NO_WORK_DAYS)):
        set_working_hours(user=bob, days=[], start=dt.time(8), end=dt.time(11))
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=bob.pk).update(work_start=dt.time(18))
    bob.refresh_from_db()
    assert (bob.work_days, bob.work_start, bob.work_end) == ([0, 1, 2, 3, 4], dt.time(8), dt.time(17))


def test_a_company_admin_sees_a_colleagues_working_hours_but_does_not_change_them(
    alice: User, bob: User, carol: User
) -> None:
    set_working_hours(user=bob, days=[0, 1, 2, 3], start=dt.time(9, 30), end=dt.time(15))
    url = f"/admin/accounts/user/{bob.pk}/change/"
    page = page_of(client_for(alice).get(url))
    assert "Mon\u2013Thu, 9:30 AM\u20133:00 PM (America/Chicago)" in page
    assert 'name="work_start"' not in page and 'name="work_days"' not in page
    # Saving the colleague's page in the admin leaves their hours as they set them.
    response = client_for(alice).post(
        url,
        {
            "full_name": "Bob Staff",
            "role": "staff",
            "time_zone": "America/Chicago",
            "is_active": "on",
            "work_start": "06:00",
            "work_end": "07:00",
        },
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.work_start, bob.work_end) == (dt.time(9, 30), dt.time(15))
    assert client_for(carol).get(url).status_code == 404  # another company's admin
