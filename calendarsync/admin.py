"""Appointments in the admin: read-only, scoped to the company, and private details only for the
people the privacy rules let read them. The list and the page both come through
``calendarsync.selectors`` (``appointments_for_admin``): a detail the viewer may not read is never
fetched from the database."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.text import smart_split, unescape_string_literal

from accounts.admin import TenantAdmin

from .models import Appointment
from .selectors import appointment_for_admin, appointments_for_admin, readable_details_q

TIME_FIELDS = ("owner", "start", "end", "all_day", "show_as", "origin", "push", "created_at", "updated_at")
DETAIL_FIELDS = ("title", "location", "notes", "attendees", "invite", "organizer_name", "organizer_address",
                 "my_response", "outside_window", "time_zone", "sensitivity", "provider_event_id",
                 "ical_uid", "series_id", "original_start", "etag", "problems", "activity")


@admin.register(Appointment)
class AppointmentAdmin(TenantAdmin):
    list_display = ("shown_title", "owner", "start", "end", "origin")
    # A date filter, not a date hierarchy: the hierarchy reads the dates of every row to draw itself.
    list_filter = ("origin", "all_day", "start")
    ordering = ("-start",)
    list_select_related = ("owner",)
    # The search box; titles are searched too, but only where the viewer may read them (below).
    search_fields = ("owner__full_name", "owner__email")
    search_help_text = "Search by person, or by the title of an appointment you may read."

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return appointments_for_admin(super().get_queryset(request), request.user)

    @admin.display(description="Appointment")
    def shown_title(self, appointment: Appointment) -> str:
        return str(appointment.shown_title)  # type: ignore[attr-defined]

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        appointment = super().get_object(request, object_id, from_field)
        return appointment_for_admin(appointment) if appointment is not None else None

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Appointment],
                           search_term: str) -> tuple[QuerySet[Appointment], bool]:
        """Every word must match the owner's name or email, or the title of an appointment whose
        details the viewer may read: a busy block's title is never searched, so the row count
        says nothing about it."""
        readable = readable_details_q(request.user)
        for word in smart_split(search_term):
            if word.startswith(('"', "'")) and word[0] == word[-1]:
                word = unescape_string_literal(word)
            queryset = queryset.filter(Q(owner__full_name__icontains=word) | Q(owner__email__icontains=word)
                                       | (Q(title__icontains=word) & readable))
        return queryset, False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and getattr(obj, "details_shown", False):
            return (*TIME_FIELDS, *DETAIL_FIELDS)
        return TIME_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
