from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ops.demo_data import load_demo_data


class Command(BaseCommand):
    help = "Load the demo companies, staff, customers and activities (once; safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        if load_demo_data():
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        else:
            self.stdout.write("Demo data is already loaded.")
