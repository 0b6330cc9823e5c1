from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"
