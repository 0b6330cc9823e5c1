"""The admin's lists at a large company's size: counts that stop, and the appointments list through
the privacy selector, with a constant number of queries and no private detail fetched."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Company, MailboxConnection, User
from accounts.paginators import BoundedCountPaginator
from activities.services import create_activity
from calendarsync.models import Appointment
from tests.conftest import client_for

START = dt.datetime(2026, 5, 4, 15, tzinfo=dt.UTC)


def test_a_list_counts_its_rows_only_up_to_a_bound(alice: User, bob: User, greenleaf: Company,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BoundedCountPaginator, "bound", 5)
    for n in range(8):
        create_activity(company=greenleaf, kind="note", subject=f"Gate code {n}" if n < 3 else f"Note {n}", owner=bob)
    client = client_for(alice)
    with CaptureQueriesContext(connection) as captured:
        page = client.get("/admin/activities/activity/").content.decode()
    assert "More than 5 activities" in page
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 6" in sql for sql in counts), counts  # never the whole table
    searched = client.get("/admin/activities/activity/", {"q": "gate code"}).content.decode()
    assert "3 results" in searched and "More than" not in searched


def colleague(greenleaf: Company, n: int, privacy: str) -> User:
    user = User.objects.create_user(f"crew{n}@greenleaf.example", "x", full_name=f"Crew {n}", company=greenleaf)
    MailboxConnection.objects.create(user=user, company=greenleaf, provider="google", calendar_privacy=privacy,
                                     mailbox_address=user.email)
    for day in range(3):
        Appointment.objects.create(company=greenleaf, owner=user, title=f"Secret visit {n}-{day}",
                                   location="Hidden Lane", notes="gate 4410", start=START + dt.timedelta(days=day),
                                   end=START + dt.timedelta(days=day, hours=1))
    return user


def admin_list(alice: User) -> tuple[str, list[str]]:
    client = client_for(alice)
    client.get("/admin/calendarsync/appointment/")
    with CaptureQueriesContext(connection) as captured:
        page = client.get("/admin/calendarsync/appointment/").content.decode()
    return page, [q["sql"] for q in captured.captured_queries]


def test_the_appointments_list_decides_access_once_per_owner_and_fetches_no_hidden_detail(
    alice: User, greenleaf: Company
) -> None:
    public = colleague(greenleaf, 0, "public")
    private = colleague(greenleaf, 1, "private")
    page, few = admin_list(alice)
    assert "Secret visit 0-0" in page and "Secret visit 1-0" not in page and page.count("Busy") >= 3
    for sql in few:
        assert '"location"' not in sql and '"notes"' not in sql and '"attendees"' not in sql, sql
    rows = [sql for sql in few if 'FROM "calendarsync_appointment"' in sql and "CASE" in sql]
    assert rows and all('"calendarsync_appointment"."title"' not in sql.split("CASE")[0] for sql in rows), rows
    for n in range(2, 8):
        colleague(greenleaf, n, "private" if n % 2 else "public")
    _, many = admin_list(alice)
    assert len(many) == len(few), (len(few), len(many))
    private.mailbox.shared_with.add(alice)
    assert "Secret visit 1-0" in admin_list(alice)[0]
    assert public.pk != private.pk


def test_a_busy_blocks_change_page_shows_its_times_only(alice: User, greenleaf: Company) -> None:
    private = colleague(greenleaf, 1, "private")
    appointment = Appointment.objects.filter(owner=private).first()
    assert appointment is not None
    with CaptureQueriesContext(connection) as captured:
        page = client_for(alice).get(f"/admin/calendarsync/appointment/{appointment.pk}/change/").content.decode()
    assert "Secret visit" not in page and "Hidden Lane" not in page
    assert not any('"notes"' in q["sql"] or '"location"' in q["sql"] for q in captured.captured_queries)
