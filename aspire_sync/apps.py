from django.apps import AppConfig


class AspireSyncConfig(AppConfig):
    """The project package as an app: it alone may import both sync apps, so the scheduling that
    drives them lives here."""

    name = "aspire_sync"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from . import scheduling  # noqa: F401  (connects the "sync now" signal)
