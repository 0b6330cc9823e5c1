from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self) -> None:
        from activities import record_actions

        record_actions.register("new-appointment", _new_appointment)


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
