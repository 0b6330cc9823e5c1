from django.contrib import admin

from .models import BeatHeartbeat, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("worker", "queue", "last_seen", "beats")
    list_filter = ("queue",)
    readonly_fields = ("worker", "queue", "last_seen", "beats")


@admin.register(BeatHeartbeat)
class BeatHeartbeatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("scheduler", "last_seen", "beats")
    readonly_fields = ("scheduler", "last_seen", "beats")
