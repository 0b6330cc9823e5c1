from __future__ import annotations

from django.contrib import admin

from accounts.admin import TenantAdmin

from .models import NeverCapture


@admin.register(NeverCapture)
class NeverCaptureAdmin(TenantAdmin):
    list_display = ("entry", "note", "created_at")
    search_fields = ("entry", "note")
    fields = ("entry", "note")
