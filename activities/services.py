"""Writes to activities: one function per business action, each one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from accounts.models import Company
from accounts.tenancy import ensure_same_company
from crm.models import Contact

from . import regarding as regarding_kinds
from .models import Activity, ActivityContact
from .regarding import Regarding


@transaction.atomic
def create_activity(
    *,
    company: Company,
    kind: str,
    subject: str = "",
    body: str = "",
    occurred_at: dt.datetime | None = None,
    origin: str = Activity.Origin.MADE_IN_ASPIRE,
    owner: Any = None,
    contacts: Iterable[Contact] = (),
    regarding: Regarding | None = None,
) -> Activity:
    activity = Activity(company=company, kind=kind, subject=subject, body=body, origin=origin, owner=owner)
    if occurred_at is not None:
        activity.occurred_at = occurred_at
    activity.regarding = regarding
    activity.full_clean()
    activity.save()
    contacts = list(contacts)
    for contact in contacts:
        ensure_same_company(company.pk, contact, field="contacts")
    activity.contacts.add(*contacts)
    return activity


@transaction.atomic
def set_regarding(*, activity: Activity, regarding: Regarding | None) -> Activity:
    """Point an activity at an Opportunity, Property or Work Ticket of its company, or at nothing."""
    ensure_same_company(activity.company_id, regarding, field="regarding")
    activity.regarding = regarding
    activity.save(update_fields=list(regarding_kinds.FIELDS))
    return activity


@transaction.atomic
def file_on_contact(*, activity: Activity, contact: Contact) -> Activity:
    """File an activity on a contact of its company, e.g. captured mail no address matched."""
    ensure_same_company(activity.company_id, contact, field="contacts")
    activity.contacts.add(contact)
    return activity


def refresh_contact_links(activity_ids: Iterable[uuid.UUID]) -> None:
    """Bring up to date what the contact links of these activities imply: each link carries its
    activity's time (the contact timeline's index), and each activity knows whether it is filed on
    anyone (the Unmatched list's). Every change of the links comes through here: adding, removing
    or clearing them (``activities.signals``), deleting a contact, moving an activity in time, and
    capture, which writes both itself in bulk."""
    ids = list(activity_ids)
    if not ids:
        return
    ActivityContact.objects.filter(activity_id__in=ids).update(
        occurred_at=Subquery(Activity.objects.filter(pk=OuterRef("activity_id")).order_by().values("occurred_at")[:1])
    )
    Activity.objects.filter(pk__in=ids).update(filed=Exists(ActivityContact.objects.filter(activity_id=OuterRef("pk"))))
