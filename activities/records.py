"""The record pages (a contact, a property, an opportunity, a work ticket): the record's facts and its
timeline. They live here, above ``crm``, because a timeline is activities; the lists stay in ``crm``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts.tenancy import get_for_user
from crm.models import Contact, Opportunity, Property, WorkTicket
from crm.views import RECORD_KINDS

from .forms import DateRangeForm
from .models import Activity
from .record_actions import actions_for
from .selectors import Timeline, TimelineFilters, timeline_for_contact, timeline_for_record, timeline_page

TIMELINE_PAGE_SIZE = 20


def _dates(request: HttpRequest) -> DateRangeForm:
    return DateRangeForm(request.GET or None)


def _filters(request: HttpRequest) -> TimelineFilters:
    """The page's filters: a kind, an origin, and the days of the date range when they are valid
    (otherwise the form says why, and the days narrow nothing)."""
    dates = _dates(request)
    since, until = (dates.cleaned_data["since"], dates.cleaned_data["until"]) if dates.is_valid() else (None, None)
    return TimelineFilters.parse(request.GET.get("kind"), request.GET.get("origin"), since=since, until=until,
                                 time_zone=timezone.get_current_timezone())


def _detail(request: HttpRequest, record: Model, kind: str, timeline: Timeline, **extra: Any) -> HttpResponse:
    filters = _filters(request)
    page = timeline_page(timeline, per_page=TIMELINE_PAGE_SIZE, number=request.GET.get("page"),
                         before=request.GET.get("before"), after=request.GET.get("after"))
    context = {"record": record, "kind": kind, "spec": RECORD_KINDS[kind], "timeline": page,
               "actions": actions_for(record, request.user), "filters": filters,
               "timeline_params": filters.query_string(), "kinds": Activity.Kind.choices, "dates": _dates(request),
               "origins": Activity.Origin.choices, **extra}
    return render(request, f"activities/records/{kind}_detail.html", context)


@login_required
@require_safe
def contact_detail(request: HttpRequest, pk: str) -> HttpResponse:
    contact = get_for_user(Contact.objects.prefetch_related("emails", "properties"), request.user, pk)
    return _detail(request, contact, "contacts", timeline_for_contact(contact, _filters(request)))


@login_required
@require_safe
def property_detail(request: HttpRequest, pk: str) -> HttpResponse:
    record = get_for_user(Property.objects.prefetch_related("contacts"), request.user, pk)
    return _detail(
        request,
        record,
        "properties",
        timeline_for_record(record, _filters(request)),
        opportunities=record.opportunities.all(),
        work_tickets=record.work_tickets.all(),
    )


# The records whose page is their facts and timeline, nothing more, as each page reads them.
PLAIN_RECORDS: dict[str, QuerySet[Any]] = {
    "opportunities": Opportunity.objects.select_related("contact", "property"),
    "work_tickets": WorkTicket.objects.select_related("property"),
}


@login_required
@require_safe
def record_detail(request: HttpRequest, pk: str, kind: str) -> HttpResponse:
    """The page of one of ``PLAIN_RECORDS``; the URLconf names the kind."""
    record = get_for_user(PLAIN_RECORDS[kind], request.user, pk)
    return _detail(request, record, kind, timeline_for_record(record, _filters(request)))
