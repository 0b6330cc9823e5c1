from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.paginators import KeysFirstPaginator
from accounts.search import number_in, text_search
from accounts.tenancy import scoped

from .models import Contact, Opportunity, Property, WorkTicket

LIST_PAGE_SIZE = 25


def _page(request: HttpRequest, queryset: QuerySet[Any], size: int) -> Any:
    return KeysFirstPaginator(queryset, size).get_page(request.GET.get("page"))


def _search(request: HttpRequest, queryset: QuerySet[Any], q: str, spec: dict[str, Any]) -> QuerySet[Any]:
    number = number_in(q)
    by_number = Q(number=number) if spec.get("by_number") and number is not None else None
    return text_search(queryset, q, spec["search"], address_fields=spec.get("address_search", ()), extra=by_number,
                       company_id=getattr(request.user, "company_id", None))


# What each list shows and searches; the record pages (activities.records) use it for their crumbs.
RECORD_KINDS: dict[str, dict[str, Any]] = {
    "contacts": {
        "list_url": "crm:contact_list",
        "model": Contact,
        "title": "Contacts",
        "singular": "Contact",
        "search": ("first_name", "last_name", "company_name", "phone", "emails__address"),
        "address_search": ("emails__address",),
        "prefetch": ("emails",),
    },
    "properties": {
        "list_url": "crm:property_list",
        "model": Property,
        "title": "Properties",
        "singular": "Property",
        "search": ("name", "street", "city", "postal_code"),
        "prefetch": (),
    },
    "opportunities": {
        "list_url": "crm:opportunity_list",
        "model": Opportunity,
        "title": "Opportunities",
        "singular": "Opportunity",
        "search": ("name", "contact__first_name", "contact__last_name", "property__name"),
        "prefetch": ("contact", "property"),
    },
    "work_tickets": {
        "list_url": "crm:work_ticket_list",
        "model": WorkTicket,
        "title": "Work tickets",
        "singular": "Work ticket",
        "search": ("description", "property__name"),
        "prefetch": ("property",),
        "by_number": True,
    },
}


@login_required
@require_safe
def record_list(request: HttpRequest, kind: str) -> HttpResponse:
    """One list page of ``RECORD_KINDS``; the URLconf names the kind."""
    spec = RECORD_KINDS[kind]
    q = request.GET.get("q", "").strip()
    queryset = scoped(spec["model"], request.user).prefetch_related(*spec["prefetch"])
    # The primary key last: pages of a list sorted by name hold the same rows however ties fall.
    queryset = _search(request, queryset, q, spec).order_by(*spec["model"]._meta.ordering, "pk")
    context = {"kind": kind, "spec": spec, "q": q, "page": _page(request, queryset, LIST_PAGE_SIZE)}
    return render(request, f"crm/{kind}_list.html", context)
