"""Reads of activities. Timelines go through here so later rules (calendar privacy) apply everywhere."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from crm.models import Contact, Opportunity, Property, WorkTicket

from .models import Activity


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
