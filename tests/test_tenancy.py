"""Tenant isolation over every page and every admin view: another company's record is a 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import Company, User
from accounts.tenancy import admin_scoped
from activities.models import Activity
from crm.models import Contact, Opportunity, Property, WorkTicket
from tests.conftest import client_for

DETAIL_PAGES = ["contact", "prop", "opportunity", "work_ticket"]


@pytest.fixture
def records(
    contact: Contact, prop: Property, opportunity: Opportunity, work_ticket: WorkTicket, activity: Activity
) -> dict[str, Any]:
    return {
        "contact": contact,
        "prop": prop,
        "opportunity": opportunity,
        "work_ticket": work_ticket,
        "activity": activity,
        "company": contact.company,
    }


@pytest.mark.parametrize("name", DETAIL_PAGES)
def test_each_record_page_is_a_404_for_another_company(
    name: str, records: dict[str, Any], bob: User, carol: User
) -> None:
    url = records[name].get_absolute_url()
    assert client_for(bob).get(url).status_code == 200
    response = client_for(carol).get(url)
    assert response.status_code == 404
    assert str(records[name]) not in response.content.decode()


@pytest.mark.parametrize("url", ["/contacts/", "/properties/", "/opportunities/", "/work-tickets/"])
def test_lists_and_search_show_only_the_own_company(url: str, records: dict[str, Any], bob: User, carol: User) -> None:
    own = client_for(bob).get(url).content.decode()
    other = client_for(carol).get(url).content.decode()
    record = {
        "/contacts/": records["contact"],
        "/properties/": records["prop"],
        "/opportunities/": records["opportunity"],
        "/work-tickets/": records["work_ticket"],
    }[url]
    search = {"/contacts/": "Dana", "/properties/": "Whitfield", "/opportunities/": "mulch", "/work-tickets/": "1041"}[
        url
    ]
    assert record.get_absolute_url() in own
    assert record.get_absolute_url() in client_for(bob).get(url, {"q": search}).content.decode()
    assert record.get_absolute_url() not in other
    searched = client_for(carol).get(url, {"q": search}).content.decode()
    assert record.get_absolute_url() not in searched
    assert "Nothing matches" in searched


def test_an_operator_without_a_company_sees_no_tenant_pages(records: dict[str, Any], operator: User) -> None:
    assert client_for(operator).get(records["contact"].get_absolute_url()).status_code == 404


# -- the admin ------------------------------------------------------------------------

ADMIN_MODELS = [Company, User, Contact, Property, Opportunity, WorkTicket, Activity]


def _admin_url(obj: Any, view: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def _record_of(model: type, records: dict[str, Any], bob: User) -> Any:
    return {
        Company: records["company"],
        User: bob,
        Contact: records["contact"],
        Property: records["prop"],
        Opportunity: records["opportunity"],
        WorkTicket: records["work_ticket"],
        Activity: records["activity"],
    }[model]


def test_every_tenant_model_in_the_admin_is_scoped() -> None:
    """A model registered later without the tenant base class fails here, not in production."""
    from accounts.admin import ScopedAdmin

    for model, model_admin in admin.site._registry.items():
        if any(f.name == "company" for f in model._meta.get_fields()) or model is Company:
            assert isinstance(model_admin, ScopedAdmin), model


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_admin_views_are_a_404_for_another_companys_admin(
    model: type, view: str, records: dict[str, Any], bob: User, alice: User, carol: User, operator: User
) -> None:
    obj = _record_of(model, records, bob)
    url = _admin_url(obj, view)
    # Only operators delete companies.
    assert client_for(alice).get(url).status_code == (403 if (model, view) == (Company, "delete") else 200)
    assert client_for(operator).get(url).status_code == 200
    assert client_for(carol).get(url).status_code == 404


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_admin_lists_only_the_own_company(
    model: type, records: dict[str, Any], bob: User, alice: User, carol: User, operator: User
) -> None:
    obj = _record_of(model, records, bob)
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_changelist")
    assert str(obj.pk) in client_for(alice).get(url).content.decode()
    assert str(obj.pk) in client_for(operator).get(url).content.decode()
    carol_page = client_for(carol).get(url)
    assert carol_page.status_code == 200
    assert str(obj.pk) not in carol_page.content.decode()


def test_a_company_admin_cannot_post_another_companys_contact(records: dict[str, Any], carol: User) -> None:
    summit_property = Property.objects.create(company=carol.company, name="Mall", street="1 Main", city="Denver")
    url = _admin_url(summit_property, "change")
    response = client_for(carol).post(
        url,
        {
            "name": "Mall",
            "street": "1 Main",
            "city": "Denver",
            "state": "",
            "postal_code": "",
            "contacts": [str(records["contact"].pk)],
        },
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert "Select a valid choice" in response.content.decode()
    assert not summit_property.contacts.exists()


def test_a_company_admin_adds_rows_to_their_own_company_only(alice: User, summit: Company) -> None:
    response = client_for(alice).post(
        reverse("admin:crm_contact_add"),
        {
            "first_name": "Nina",
            "last_name": "Gray",
            "company_name": "",
            "phone": "",
            "company": str(summit.pk),  # ignored: company admins never choose the company
            "emails-TOTAL_FORMS": "1",
            "emails-INITIAL_FORMS": "0",
            "emails-MIN_NUM_FORMS": "0",
            "emails-MAX_NUM_FORMS": "1000",
            "emails-0-address": "nina@example.com",
            "emails-0-is_primary": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    nina = Contact.objects.get(first_name="Nina")
    assert nina.company_id == alice.company_id
    assert nina.emails.get().company_id == alice.company_id


def test_staff_without_the_admin_role_get_nothing_in_the_admin(records: dict[str, Any], bob: User) -> None:
    assert admin_scoped(Contact.objects.all(), bob).count() == 0
    assert client_for(bob).get(_admin_url(records["contact"], "change")).status_code == 302


# -- email pages -----------------------------------------------------------------------------

EMAIL_PAGES = [
    ("get", "/activities/{email}/"),
    ("get", "/activities/{email}/?images=1"),
    ("get", "/activities/{email}/attachments/{attachment}/"),
    ("post", "/activities/{email}/regarding/"),
    ("post", "/activities/{email}/contacts/"),
]


@pytest.mark.parametrize(("method", "url"), EMAIL_PAGES)
def test_each_email_page_is_a_404_for_another_company(
    method: str, url: str, records: dict[str, Any], bob: User, carol: User, settings: Any, tmp_path: Any
) -> None:
    from tests.activities.emails import attach, make_email

    settings.MEDIA_ROOT = tmp_path
    email = make_email(bob, subject="Confidential bid", html="<p>Our price</p>", contacts=[records["contact"]])
    attachment = attach(email, "bid.pdf", b"%PDF bid")
    url = url.format(email=email.pk, attachment=attachment.pk)
    data = {"regarding": f"opportunity:{records['opportunity'].pk}", "contact": str(records["contact"].pk)}
    own = getattr(client_for(bob), method)(url, data if method == "post" else None)
    assert own.status_code == (302 if method == "post" else 200)
    response = getattr(client_for(carol), method)(url, data if method == "post" else None)
    assert response.status_code == 404
    assert "Confidential bid" not in response.content.decode()


CHOOSER_SEARCHES = [
    ("/activities/regarding-search/", "mulch"),
    ("/activities/regarding-search/", "Whitfield"),
    ("/activities/regarding-search/", "Cedar Bend"),
    ("/activities/regarding-search/", "1041"),
    ("/activities/contact-search/", "Dana"),
    ("/activities/contact-search/", "dana@example.com"),
]


@pytest.mark.parametrize(("url", "q"), CHOOSER_SEARCHES)
def test_choosers_search_only_the_own_company(
    url: str, q: str, records: dict[str, Any], bob: User, carol: User
) -> None:
    assert client_for(bob).get(url, {"q": q}).json()["results"]
    assert client_for(carol).get(url, {"q": q}).json() == {"results": []}


def test_unmatched_mail_is_the_users_own(records: dict[str, Any], bob: User, alice: User, carol: User) -> None:
    from tests.activities.emails import make_email

    make_email(bob, subject="Who sent this?")
    assert "Who sent this?" in client_for(bob).get("/activities/unmatched/").content.decode()
    for other in (alice, carol):
        assert "Who sent this?" not in client_for(other).get("/activities/unmatched/").content.decode()
