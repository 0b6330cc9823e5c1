"""Content-Security-Policy on every page: each page a person or an admin opens carries it, the email
page keeps its stricter policy, and in a real browser no page breaks under it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from activities.models import Activity
from calendarsync.models import Appointment
from crm.models import Contact
from tests.conftest import PASSWORD, client_for


def page_urls(contact: Contact, activity: Activity, appointment: Appointment) -> list[str]:
    return [
        "/contacts/", contact.get_absolute_url(), "/properties/", "/opportunities/", "/work-tickets/",
        "/settings/", "/calendar/", f"/calendar/appointments/{appointment.pk}/", "/calendar/appointments/new/",
        "/calendar/changes/", "/activities/unmatched/", "/mail/outbox/", f"/mail/compose/contact/{contact.pk}/",
        "/admin/", "/admin/crm/contact/", reverse("admin:crm_contact_change", args=[contact.pk]),
        "/admin/calendarsync/appointment/", "/admin/accounts/user/", "/admin/accounts/mailboxconnection/",
    ]


@pytest.fixture
def appointment(alice: User) -> Appointment:
    start = timezone.now() + dt.timedelta(days=1)
    return Appointment.objects.create(company=alice.company, owner=alice, title="Site walk", start=start,
                                      end=start + dt.timedelta(hours=1), origin="aspire")


def test_every_page_carries_the_policy(alice: User, contact: Contact, activity: Activity,
                                       appointment: Appointment) -> None:
    client = client_for(alice)
    pages = page_urls(contact, activity, appointment)
    anonymous = Client().get("/login/")
    for response in [anonymous, *(client.get(url) for url in pages)]:
        assert response.status_code == 200, response.wsgi_request.path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, response.wsgi_request.path
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_the_email_page_keeps_its_stricter_policy(bob: User, contact: Contact) -> None:
    from tests.activities.emails import make_email

    email = make_email(bob, subject="Bid", html="<p>Our price</p>", contacts=[contact])
    policy = client_for(bob).get(f"/activities/{email.pk}/")["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "img-src 'self' data:;" in policy + ";"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_breaks_under_the_policy_in_a_browser(live_server: Any, browser_page: Any, alice: User,
                                                      contact: Contact, activity: Activity,
                                                      appointment: Appointment) -> None:
    page = browser_page
    page.add_init_script("""
        window.__violations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
    """)
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Contacts").wait_for()
    for url in page_urls(contact, activity, appointment):
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__violations") == [], url
