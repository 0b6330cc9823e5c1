"""The benchmark command runs, prints its figures, and leaves nothing behind."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Company, User
from calendarsync.models import Appointment


@pytest.mark.django_db
def test_bench_calendar_prints_week_view_figures_and_cleans_up() -> None:
    out = io.StringIO()
    call_command("bench_calendar", users=6, appointments=300, requests=5, skip_sandbox=True, stdout=out)
    text = out.getvalue()
    assert "30 appointments: week view" in text and "300 appointments: week view" in text
    assert "p95" in text and "queries" in text
    assert not Appointment.objects.exists() and not User.objects.exists() and not Company.objects.exists()
