from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self) -> None:
        from activities import record_actions

        from . import signals  # noqa: F401

        record_actions.register("new-appointment", _new_appointment)
        from accounts import settings_sections

        settings_sections.register("calendar-link", _calendar_link)


def _calendar_link(user: Any) -> Any:
    """Settings: the personal calendar link, on or off."""
    from django.urls import reverse

    from accounts.settings_sections import SettingsSection

    from .selectors import has_feed_link

    if has_feed_link(user):
        return SettingsSection("Calendar on your phone", "Your personal calendar link is on. Reset it if it "
                               "was shared by mistake: the old link stops working at once.",
                               reverse("calendarsync:calendar_link"), "Manage the link")
    return SettingsSection("Calendar on your phone", "Subscribe to your Aspire calendar from your phone or another "
                           "calendar app with a personal, secret link.", reverse("calendarsync:calendar_link"),
                           "Make a link")


def _new_appointment(record: Any, user: Any) -> Any:
    """"New appointment" on a record's page: with a contact, or regarding an opportunity, a property
    or a work ticket (with its contacts, and a property's address as the place)."""
    from urllib.parse import urlencode

    from django.urls import reverse

    from activities import regarding
    from activities.record_actions import RecordAction
    from crm.models import Contact

    url = reverse("calendarsync:appointment_create")
    if isinstance(record, Contact):
        return RecordAction("New appointment", f"{url}?{urlencode({'contact': str(record.pk)})}")
    if type(record) in regarding.BY_MODEL:
        return RecordAction("New appointment", f"{url}?{urlencode({'regarding': regarding.value_of(record)})}")
    return None
