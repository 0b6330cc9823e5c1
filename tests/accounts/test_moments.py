"""A moment, written one way on every page: on the reader's clock, with the year where asked."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone

from accounts.moments import moment

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
WHEN = dt.datetime(2026, 12, 1, 15, 5, tzinfo=dt.UTC)


def test_a_moment_is_written_on_the_readers_clock() -> None:
    assert moment(WHEN, CHICAGO) == "Tue, Dec 1, 9:05 AM"
    assert moment(WHEN, CHICAGO, year=True) == "Tue, Dec 1, 2026 9:05 AM"
    assert moment(None) == ""
    assert moment(WHEN.replace(tzinfo=None)) == "Tue, Dec 1, 3:05 PM"  # naive: as it is, as Django's date does
    with timezone.override(CHICAGO):
        # As Django's own date filter writes it, in every template without a {% load %}.
        rendered = Template('{{ when|moment }} | {{ when|moment:"year" }} | {{ when|date:"D, M j, g:i A" }}').render(
            Context({"when": WHEN}))
    assert rendered == "Tue, Dec 1, 9:05 AM | Tue, Dec 1, 2026 9:05 AM | Tue, Dec 1, 9:05 AM"


def test_a_moment_refuses_a_form_it_does_not_know() -> None:
    with pytest.raises(TemplateSyntaxError):
        Template('{{ when|moment:"iso" }}').render(Context({"when": WHEN}))
