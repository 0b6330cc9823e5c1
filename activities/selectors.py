"""Reads of activities. Timelines go through here so later rules (calendar privacy) apply everywhere."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import islice, zip_longest
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.text import Truncator

from accounts.tenancy import get_for_user, scoped
from crm.models import Contact, Opportunity, Property, WorkTicket

from .models import Activity, EmailAttachment
from .regarding import Regarding, record_for_user, value_of

M = TypeVar("M", bound=Model)


def _timeline(queryset: QuerySet[Activity]) -> QuerySet[Activity]:
    return (
        queryset.select_related("owner", "regarding_opportunity", "regarding_property", "regarding_work_ticket")
        .prefetch_related("contacts")
        .order_by("-occurred_at", "-created_at")
    )


def timeline_for_contact(contact: Contact) -> QuerySet[Activity]:
    return _timeline(Activity.objects.filter(company_id=contact.company_id, contacts=contact))


def timeline_for_record(record: Opportunity | Property | WorkTicket) -> QuerySet[Activity]:
    """A record's activities. A property's page also shows what concerns its opportunities and
    work tickets, as office staff expect to see everything about a site in one place."""
    if isinstance(record, Property):
        condition = (
            Q(regarding_property=record)
            | Q(regarding_opportunity__property=record)
            | Q(regarding_work_ticket__property=record)
        )
    elif isinstance(record, Opportunity):
        condition = Q(regarding_opportunity=record)
    else:
        condition = Q(regarding_work_ticket=record)
    return _timeline(Activity.objects.filter(condition, company_id=record.company_id))


# -- email pages ------------------------------------------------------------------------


def email_for_user(user: Any, pk: uuid.UUID | str) -> Activity:
    """An email Activity of the user's company, or 404."""
    queryset = Activity.objects.filter(kind=Activity.Kind.EMAIL).select_related(
        "email", "owner", "regarding_opportunity", "regarding_property", "regarding_work_ticket"
    )
    return get_for_user(queryset, user, pk)


def attachment_for_user(user: Any, activity: Activity, pk: uuid.UUID | str) -> EmailAttachment:
    """One stored attachment of an email the user may read, or 404 (also for ones too large to keep)."""
    queryset = EmailAttachment.objects.filter(email_id=activity.pk, too_large=False).exclude(file="")
    return get_for_user(queryset, user, pk)


def unmatched_emails(user: Any) -> QuerySet[Activity]:
    """The user's own captured mail that is filed on no contact yet. Per user, admins included:
    whoever captured it knows best whom it is about."""
    return (
        scoped(Activity, user)
        .filter(kind=Activity.Kind.EMAIL, origin=Activity.Origin.CAPTURED, owner_id=user.pk, contacts__isnull=True)
        .select_related("email")
        .order_by("-occurred_at", "-created_at")
    )


@dataclass(frozen=True)
class Choice:
    """One record offered by a chooser: ``value`` is what its form posts back."""

    value: str
    label: str
    detail: str


CHOICES_LIMIT = 20


def _matching_every_word(queryset: QuerySet[M], q: str, fields: tuple[str, ...]) -> QuerySet[M]:
    # "dana whit" or "1402 cedar": each word may match a different field.
    for word in q.split():
        condition = Q()
        for field in fields:
            condition |= Q(**{f"{field}__icontains": word})
        queryset = queryset.filter(condition)
    return queryset


def regarding_choices(user: Any, q: str) -> list[Choice]:
    """The user's company's Opportunities (by name), Properties (by name or address) and Work
    Tickets (by number or description) matching ``q``, at most 20, mixed so no kind crowds out the others."""
    q = q.strip()
    if not q:
        return []
    tickets = scoped(WorkTicket, user).select_related("property")
    number = q.lstrip("#")
    by_number = list(tickets.filter(number=int(number))) if number.isdigit() and len(number) < 10 else []
    by_description = _matching_every_word(tickets, q, ("description",)).exclude(pk__in=[t.pk for t in by_number])
    opportunities = _matching_every_word(scoped(Opportunity, user).select_related("property"), q, ("name",))
    properties = _matching_every_word(scoped(Property, user), q, ("name", "street", "city", "state", "postal_code"))
    groups: list[list[Choice]] = [
        [_ticket_choice(ticket) for ticket in by_number],
        [
            Choice(value_of(o), o.name, f"Opportunity{f' · {o.property}' if o.property else ''}")
            for o in opportunities[:CHOICES_LIMIT]
        ],
        [Choice(value_of(p), p.name, f"Property · {p.address}") for p in properties[:CHOICES_LIMIT]],
        [_ticket_choice(ticket) for ticket in by_description[:CHOICES_LIMIT]],
    ]
    mixed = (choice for row in zip_longest(*groups) for choice in row if choice is not None)
    return list(islice(mixed, CHOICES_LIMIT))


def _ticket_choice(ticket: WorkTicket) -> Choice:
    detail = f"Work ticket · {ticket.property}"
    if ticket.description:
        detail += f" · {Truncator(ticket.description).chars(60)}"
    return Choice(value_of(ticket), str(ticket), detail)


def regarding_for_user(user: Any, value: str) -> Regarding:
    """The record a chooser posted back ("kind:uuid"), of the user's company, or 404."""
    return record_for_user(user, value)


def contact_choices(user: Any, q: str) -> list[Choice]:
    """The user's company's contacts whose name or email address matches ``q``, at most 20."""
    q = q.strip()
    if not q:
        return []
    contacts = _matching_every_word(
        scoped(Contact, user).prefetch_related("emails"),
        q,
        ("first_name", "last_name", "company_name", "emails__address"),
    ).distinct()
    return [
        Choice(str(contact.pk), contact.name, " · ".join(filter(None, (contact.primary_email, contact.company_name))))
        for contact in contacts[:CHOICES_LIMIT]
    ]
