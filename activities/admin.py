from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts.admin import ScopedAdmin, TenantAdmin, TenantInline

from .models import Activity, ActivityContact
from .services import refresh_contact_links


class ActivityContactInline(TenantInline):
    model = ActivityContact
    fields = ("contact",)
    # Chosen by search, not from a list of every contact of the company.
    autocomplete_fields = ("contact",)
    extra = 1
    verbose_name = "contact"
    verbose_name_plural = "contacts"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("contact")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return ScopedAdmin._scope_choices(self, field, db_field, request)  # type: ignore[arg-type]


@admin.register(Activity)
class ActivityAdmin(TenantAdmin):
    list_display = ("subject", "kind", "origin", "occurred_at", "owner")
    # A date filter, not a date hierarchy: the hierarchy reads the dates of every row to draw itself.
    list_filter = ("kind", "origin", "occurred_at")
    search_fields = ("subject",)
    autocomplete_fields = ("owner", "regarding_opportunity", "regarding_property", "regarding_work_ticket")
    inlines = (ActivityContactInline,)
    list_select_related = ("owner",)

    def save_related(self, request: HttpRequest, form: ModelForm[Any], formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        refresh_contact_links([form.instance.pk])
