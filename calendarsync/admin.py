"""Appointments in the admin: read-only, scoped to the company, and private details only for the
people the privacy rules let read them (``calendarsync.selectors.can_read_details``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import TenantAdmin

from .models import Appointment
from .selectors import can_read_details

TIME_FIELDS = ("owner", "start", "end", "all_day", "show_as", "origin", "push", "created_at", "updated_at")
DETAIL_FIELDS = ("title", "location", "notes", "attendees", "time_zone", "sensitivity", "provider_event_id",
                 "ical_uid", "series_id", "original_start", "etag", "problems", "activity")


@admin.register(Appointment)
class AppointmentAdmin(TenantAdmin):
    list_filter = ("origin", "all_day")
    date_hierarchy = "start"
    ordering = ("-start",)
    list_select_related = ("owner",)

    def get_list_display(self, request: HttpRequest) -> Any:
        def shown_title(appointment: Appointment) -> str:
            return appointment.title if can_read_details(request.user, appointment) else "Busy"

        shown: Callable[[Appointment], str] = shown_title
        shown.short_description = "Appointment"  # type: ignore[attr-defined]
        return (shown, "owner", "start", "end", "origin")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and can_read_details(request.user, obj):
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
