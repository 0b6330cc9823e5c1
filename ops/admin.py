from django.contrib import admin

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("worker", "last_seen", "beats")
    readonly_fields = ("worker", "last_seen", "beats")
