"""Timelines narrowed to one kind and one origin, on a contact's and a record's page, and kept
across pages."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from accounts.models import User
from activities.models import Activity
from activities.services import create_activity
from crm.models import Contact, Opportunity
from tests.activities.emails import make_email
from tests.conftest import client_for


def titles(response: Any) -> list[str]:
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    return re.findall(r'<h3>(?:<a [^>]*>)?([^<]*)(?:</a>)?</h3>', page)


def test_a_contacts_timeline_by_kind_and_origin(bob: User, contact: Contact, opportunity: Opportunity) -> None:
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    make_email(bob, subject="Captured question", contacts=[contact], occurred_at=start)
    make_email(bob, subject="Sent proposal", contacts=[contact], origin=Activity.Origin.SENT_FROM_ASPIRE,
               occurred_at=start + dt.timedelta(hours=1))
    create_activity(company=bob.company, kind=Activity.Kind.APPOINTMENT, subject="Site visit",  # type: ignore[arg-type]
                    contacts=[contact], owner=bob, regarding=opportunity, occurred_at=start + dt.timedelta(hours=2))
    client = client_for(bob)
    url = f"/contacts/{contact.pk}/"
    assert titles(client.get(url)) == ["Site visit", "Sent proposal", "Captured question"]
    assert titles(client.get(url, {"kind": "email"})) == ["Sent proposal", "Captured question"]
    assert titles(client.get(url, {"kind": "email", "origin": "captured"})) == ["Captured question"]
    assert titles(client.get(url, {"kind": "appointment"})) == ["Site visit"]
    # Anything else is no filter, never an error.
    assert titles(client.get(url, {"kind": "<script>", "origin": "x"})) == [
        "Site visit", "Sent proposal", "Captured question"]
    record = f"/opportunities/{opportunity.pk}/"
    assert titles(client.get(record, {"kind": "appointment"})) == ["Site visit"]
    assert titles(client.get(record, {"kind": "email"})) == []
    page = html.unescape(client.get(url, {"kind": "email"}).content.decode())
    assert '<option value="email" selected>Email</option>' in page


def test_the_filter_is_kept_from_page_to_page(bob: User, contact: Contact) -> None:
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    for n in range(25):
        make_email(bob, subject=f"Email {n:02d}", contacts=[contact], occurred_at=start + dt.timedelta(hours=n))
    for n in range(5):
        create_activity(company=bob.company, kind=Activity.Kind.NOTE, subject=f"Note {n}",  # type: ignore[arg-type]
                        contacts=[contact], occurred_at=start + dt.timedelta(hours=30 + n))
    client = client_for(bob)
    first = client.get(f"/contacts/{contact.pk}/", {"kind": "email"})
    assert titles(first)[0] == "Email 24" and len(titles(first)) == 20
    older = re.search(r'href="\?([^"]*)">Older', first.content.decode())
    assert older is not None and "kind=email" in older.group(1)
    second = client.get(f"/contacts/{contact.pk}/?{html.unescape(older.group(1))}")
    assert titles(second) == [f"Email {n:02d}" for n in range(4, -1, -1)]


def test_a_timeline_by_a_range_of_days_in_the_readers_time_zone(bob: User, contact: Contact,
                                                                opportunity: Opportunity) -> None:
    assert bob.time_zone == "America/Chicago"
    # 03:00 UTC on Feb 3 is still Feb 2 in Chicago.
    late = make_email(bob, subject="Late on the 2nd", contacts=[contact],
                      occurred_at=dt.datetime(2026, 2, 3, 3, 0, tzinfo=dt.UTC))
    make_email(bob, subject="On the 5th", contacts=[contact], occurred_at=dt.datetime(2026, 2, 5, 18, 0, tzinfo=dt.UTC))
    create_activity(company=bob.company, kind=Activity.Kind.NOTE, subject="Note on the 1st",  # type: ignore[arg-type]
                    contacts=[contact], regarding=opportunity,
                    occurred_at=dt.datetime(2026, 2, 1, 18, 0, tzinfo=dt.UTC))
    late.regarding = opportunity
    late.save(update_fields=["regarding_opportunity"])
    client = client_for(bob)
    url = f"/contacts/{contact.pk}/"
    assert titles(client.get(url, {"since": "2026-02-02", "until": "2026-02-02"})) == ["Late on the 2nd"]
    assert titles(client.get(url, {"since": "2026-02-02"})) == ["On the 5th", "Late on the 2nd"]
    assert titles(client.get(url, {"until": "2026-02-02", "kind": "note"})) == ["Note on the 1st"]
    record = f"/opportunities/{opportunity.pk}/"
    assert titles(client.get(record, {"since": "2026-02-02"})) == ["Late on the 2nd"]
    assert titles(client.get(record, {"until": "2026-02-01"})) == ["Note on the 1st"]
    page = html.unescape(client.get(url, {"since": "2026-02-02"}).content.decode())
    assert 'name="since" value="2026-02-02"' in page
    # A backwards range says why and narrows nothing, as on Find email; a mangled day is no filter.
    backwards = client.get(url, {"since": "2026-02-05", "until": "2026-02-01"})
    assert "The last day can't be before the first." in html.unescape(backwards.content.decode())
    assert titles(backwards) == ["On the 5th", "Late on the 2nd", "Note on the 1st"]
    assert titles(client.get(url, {"since": "not a day"})) == ["On the 5th", "Late on the 2nd", "Note on the 1st"]


def test_the_range_of_days_is_kept_from_page_to_page(bob: User, contact: Contact) -> None:
    start = dt.datetime(2026, 2, 1, 18, tzinfo=dt.UTC)
    for n in range(30):
        make_email(bob, subject=f"Email {n:02d}", contacts=[contact], occurred_at=start + dt.timedelta(days=n))
    client = client_for(bob)
    first = client.get(f"/contacts/{contact.pk}/", {"since": "2026-02-03", "until": "2026-02-26"})
    assert titles(first)[0] == "Email 25" and len(titles(first)) == 20
    older = re.search(r'href="\?([^"]*)">Older', first.content.decode())
    assert older is not None and "since=2026-02-03" in older.group(1) and "until=2026-02-26" in older.group(1)
    second = client.get(f"/contacts/{contact.pk}/?{html.unescape(older.group(1))}")
    assert titles(second) == [f"Email {n:02d}" for n in range(5, 1, -1)]
