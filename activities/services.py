"""Writes to activities: one function per business action, each one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator, validate_email
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Lower

from accounts.models import Company
from accounts.tenancy import ensure_same_company
from crm.models import Contact, ContactEmail

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


@dataclass(frozen=True)
class FiledSender:
    contact: Contact
    created: bool  # a new contact, rather than an address added to one
    filed: int  # how many unmatched emails from the address were filed on it


@transaction.atomic
def file_sender_on_contact(
    *, activity: Activity, address: str, contact: Contact | None = None, first_name: str = "",
    last_name: str = "", company_name: str = "",
) -> FiledSender:
    """A stranger becomes a contact: a new contact with this address (``contact`` None), or the
    address added to ``contact``; then this email and every other unmatched email of the company
    from that address is filed on the contact, at once."""
    address = address.strip().lower()
    _validate_address(address)
    company_id = activity.company_id
    ensure_same_company(company_id, contact, field="contacts")
    created = contact is None
    if contact is None:
        if not (first_name.strip() or last_name.strip() or company_name.strip()):
            raise ValidationError("Give the contact a name (or their company's).")
        for typed in (first_name, last_name, company_name):  # posted as typed, not through a form
            ProhibitNullCharactersValidator()(typed)
        contact = Contact(company_id=company_id, first_name=first_name.strip()[:100],
                          last_name=last_name.strip()[:100], company_name=company_name.strip()[:200])
        contact.full_clean()
        contact.save()
    if not contact.emails.annotate(lowered=Lower("address")).filter(lowered=address).exists():
        ContactEmail.objects.create(company_id=company_id, contact=contact, address=address,
                                    is_primary=not contact.emails.exists())
    unmatched = Activity.objects.filter(
        Q(pk=activity.pk) | Q(filed=False, origin=Activity.Origin.CAPTURED),
        company_id=company_id, kind=Activity.Kind.EMAIL,
    ).annotate(sender=Lower("email__from_address")).filter(Q(pk=activity.pk) | Q(sender=address))
    ids = list(unmatched.values_list("pk", flat=True))
    ActivityContact.objects.bulk_create(
        [ActivityContact(activity_id=pk, contact=contact) for pk in ids], ignore_conflicts=True)
    refresh_contact_links(ids)
    return FiledSender(contact=contact, created=created, filed=len(ids))


def _validate_address(address: str) -> None:
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(f"“{address}” is not a valid email address.") from None


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
