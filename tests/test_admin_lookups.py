"""The admin's URL lookups, tried as an attacker would: a company admin adds a lookup to a list's
query string and watches the row count. Only the filters an admin class declares are accepted; any
other lookup, on any field or related path, is refused with 400, so a hidden column (a private
appointment's title, an encrypted grant, a password hash) answers no question."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.admin import ScopedAdmin
from accounts.models import MailboxConnection, User
from calendarsync.admin import TIME_FIELDS
from calendarsync.models import Appointment
from calendarsync.selectors import can_read_details, readable_details_q
from tests.conftest import PASSWORD, client_for

TENANT_ADMINS = [(model, model_admin) for model, model_admin in admin.site._registry.items()
                 if isinstance(model_admin, ScopedAdmin)]


def changelist(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def candidate_paths(model: type[models.Model]) -> list[str]:
    """Every field of the model and every field one relation away, as a lookup path."""
    paths = []
    for field in model._meta.get_fields():
        paths.append(field.name)
        related = field.related_model
        if field.is_relation and related is not None and isinstance(related, type):
            paths.extend(f"{field.name}__{far.name}" for far in related._meta.concrete_fields)
    return sorted(set(paths))


@pytest.fixture
def private_appointment(bob: User) -> Appointment:
    MailboxConnection.objects.create(user=bob, company=bob.company, provider="microsoft",
                                     mailbox_address=bob.email, state="connected", sync_calendar=True,
                                     calendar_privacy=MailboxConnection.Privacy.PRIVATE,
                                     grant_ciphertext="gAAAA-secret-grant")
    start = timezone.now() + dt.timedelta(days=2)
    return Appointment.objects.create(company=bob.company, owner=bob, title="Doctor visit", location="Mercy Clinic",
                                      start=start, end=start + dt.timedelta(hours=1), origin="provider")


@pytest.mark.parametrize(("model", "model_admin"), TENANT_ADMINS, ids=[m.__name__ for m, _ in TENANT_ADMINS])
def test_only_declared_filters_are_accepted_as_url_lookups(
    model: type[models.Model], model_admin: ScopedAdmin, alice: User, private_appointment: Appointment, rf: Any
) -> None:
    client = client_for(alice)
    url = changelist(model)
    assert client.get(url).status_code == 200
    request = rf.get(url)
    request.user = alice
    declared = model_admin.declared_lookups(request)
    tried = 0
    for path in candidate_paths(model):
        for lookup in (path, f"{path}__startswith", f"{path}__isnull"):
            response = client.get(url, {lookup: "a" if not lookup.endswith("isnull") else "False"})
            expected = (200, 302) if lookup in declared else (400,)
            assert response.status_code in expected, (lookup, response.status_code)
            tried += 1
    assert tried > 10


def test_declared_appointment_filters_are_on_what_a_busy_block_shows(rf: Any, alice: User) -> None:
    request = rf.get("/")
    request.user = alice
    model_admin = admin.site._registry[Appointment]
    declared = {re.split("__", lookup)[0] for lookup in model_admin.declared_lookups(request)}  # type: ignore[attr-defined]
    assert declared and declared <= set(TIME_FIELDS)


def test_the_row_count_says_nothing_about_a_private_title(alice: User, bob: User,
                                                         private_appointment: Appointment) -> None:
    client = client_for(alice)
    url = changelist(Appointment)
    assert "Busy" in client.get(url).content.decode()
    for guess in ("Doctor", "Zebra"):
        assert client.get(url, {"title__startswith": guess}).status_code == 400
        assert client.get(url, {"id": str(private_appointment.pk), "title__startswith": guess}).status_code == 400
    # Search finds the busy block by its owner, never by its hidden title.
    assert str(private_appointment.pk) in client.get(url, {"q": "Bob"}).content.decode()
    assert str(private_appointment.pk) not in client.get(url, {"q": "Doctor"}).content.decode()
    # The owner searches their own titles.
    bob.role = User.Role.ADMIN
    bob.save(update_fields=["role"])
    assert str(private_appointment.pk) in client_for(bob).get(url, {"q": "Doctor"}).content.decode()
    # And the encrypted grant cannot be probed either.
    probe = client.get(changelist(MailboxConnection), {"grant_ciphertext__startswith": "gAAAA"})
    assert probe.status_code == 400


def test_a_readable_title_is_found_by_search(alice: User, bob: User) -> None:
    MailboxConnection.objects.create(user=bob, company=bob.company, provider="microsoft", mailbox_address=bob.email,
                                     state="connected", calendar_privacy=MailboxConnection.Privacy.PUBLIC)
    start = timezone.now() + dt.timedelta(days=2)
    public = Appointment.objects.create(company=bob.company, owner=bob, title="Mulch delivery", start=start,
                                        end=start + dt.timedelta(hours=1))
    page = client_for(alice).get(changelist(Appointment), {"q": "mulch"}).content.decode()
    assert str(public.pk) in page and "Mulch delivery" in page


@pytest.mark.parametrize("privacy", ["public", "private"])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("sensitivity", ["normal", "private", "confidential"])
def test_the_search_filter_and_the_page_rule_agree(privacy: str, shared: bool, sensitivity: str, alice: User,
                                                   bob: User, carol: User, operator: User) -> None:
    """readable_details_q is the query form of can_read_details: they agree for every case."""
    connection = MailboxConnection.objects.create(user=bob, company=bob.company, provider="google",
                                                  mailbox_address=bob.email, state="connected",
                                                  calendar_privacy=privacy)
    if shared:
        connection.shared_with.add(alice)
    start = timezone.now()
    appointment = Appointment.objects.create(company=bob.company, owner=bob, title="T", start=start,
                                             end=start + dt.timedelta(hours=1), sensitivity=sensitivity)
    dan = User.objects.create_user("dan@greenleaf.example", PASSWORD, company=bob.company)
    for viewer in (alice, bob, carol, operator, dan):
        by_query = Appointment.objects.filter(readable_details_q(viewer), pk=appointment.pk).exists()
        assert by_query == can_read_details(viewer, appointment), viewer
