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
    call_command("bench_calendar", users=6, appointments=300, requests=5, skip_sandbox=True, skip_team=True,
                 stdout=out)
    text = out.getvalue()
    assert "30 appointments: week view" in text and "300 appointments: week view" in text
    assert "p95" in text and "queries" in text
    assert not Appointment.objects.exists() and not User.objects.exists() and not Company.objects.exists()


@pytest.mark.django_db
def test_bench_calendar_prints_team_view_and_find_a_time_figures_and_cleans_up() -> None:
    out = io.StringIO()
    call_command("bench_calendar", users=6, appointments=60, requests=3, team_users=24, team_appointments=2000,
                 team_requests=3, skip_sandbox=True, explain=True, stdout=out)
    text = out.getvalue()
    assert "200 appointments (3 requests each)" in text and "2,000 appointments (3 requests each)" in text
    for label in ("team view, 20 colleagues, day", "team view, 20 colleagues, week", "team view, 5 colleagues, week",
                  "Find a time, 10 colleagues, a week"):
        assert text.count(label) >= 2
    assert "target: team view of 20 p95 under 150 ms" in text and "Index" in text  # a plan was printed
    assert not Appointment.objects.exists() and not User.objects.exists() and not Company.objects.exists()
