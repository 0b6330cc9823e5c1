from __future__ import annotations

from django.contrib import admin

from accounts.admin import TenantAdmin

from .models import Activity


@admin.register(Activity)
class ActivityAdmin(TenantAdmin):
    list_display = ("subject", "kind", "origin", "occurred_at", "owner")
    list_filter = ("kind", "origin")
    search_fields = ("subject",)
    date_hierarchy = "occurred_at"
    filter_horizontal = ("contacts",)
    list_select_related = ("owner",)
