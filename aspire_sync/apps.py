from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class AspireSyncConfig(AppConfig):
    """The project package as an app: it alone may import both sync apps, so the scheduling that
    drives them lives here."""

    name = "aspire_sync"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from . import scheduling  # noqa: F401  (connects the "sync now" signal)

        make_local_folders()


def make_local_folders() -> None:
    """The folders the local defaults need (the SQLite file's, the embedded broker's, the metrics'),
    made once the apps are loaded rather than whenever settings are read."""
    Path(settings.PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)
