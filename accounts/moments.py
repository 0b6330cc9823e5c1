"""How Aspire writes a moment for a person: "Tue, Dec 1, 9:05 AM", on their own clock.

One form for every page and notice that names when something happened or will (a sync, a push
channel's expiry, a sent message), so one page never says "Dec 1, 9:05 AM" beside "Tue, Dec 1,
9:05 AM"; with the year ("Tue, Dec 1, 2026 9:05 AM") where a list reaches back years (timelines,
mail lists, an appointment's versions). The product speaks English, so the names come from the C
locale's strftime, several times faster than Django's translated ``date`` filter on a page listing
a whole company.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils import timezone

FORM = "%a, %b %-d, %-I:%M %p"
FORM_WITH_YEAR = "%a, %b %-d, %Y %-I:%M %p"


def moment(value: dt.datetime | None, zone: zoneinfo.ZoneInfo | None = None, *, year: bool = False) -> str:
    """``value`` in ``zone`` (by default the zone of the request being served: its user's); ""
    for no moment. A naive value is written as it is, as Django's ``date`` filter writes one."""
    if value is None:
        return ""
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    return local.strftime(FORM_WITH_YEAR if year else FORM)
