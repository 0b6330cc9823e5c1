"""The time zones a person picks from.

The IANA database names about 600 zones, many of them legacy aliases kept for old software
(``GB-Eire``, ``US/Central``, ``Etc/GMT+0``). People choose from the zones of ``zone.tab``: one per
region of each country with its own clock history, each named after a city, which is the list the
database itself offers for choosing a zone. Grouped by region (America, Europe...), plus UTC. A
legacy name saved earlier stays valid (the model accepts any zone the system knows) and is shown
as it is, so saving the page never changes it behind the person's back.
"""

from __future__ import annotations

import functools
from importlib import resources

from django.conf import settings

Choices = list[tuple[str, str] | tuple[str, list[tuple[str, str]]]]


@functools.cache
def canonical_time_zones() -> tuple[str, ...]:
    # Reference: https://data.iana.org/time-zones/tz-link.html ("zone.tab ... for choosing a zone")
    table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    zones = {line.split("\t")[2] for line in table.splitlines() if line and not line.startswith("#")}
    known = set(settings.TIME_ZONES)
    return tuple(sorted(zone for zone in zones | {"UTC"} if zone in known))


def _label(zone: str) -> str:
    """``America/Argentina/Buenos_Aires`` is "Argentina / Buenos Aires" in the America group."""
    return " / ".join(part.replace("_", " ") for part in zone.split("/")[1:]) or zone


def time_zone_choices(current: str = "") -> Choices:
    groups: dict[str, list[tuple[str, str]]] = {}
    for zone in canonical_time_zones():
        if "/" in zone:
            groups.setdefault(zone.split("/")[0], []).append((zone, _label(zone)))
    choices: Choices = [(region, sorted(zones, key=lambda choice: choice[1]))
                        for region, zones in sorted(groups.items())]
    choices.append(("UTC", "UTC (Coordinated Universal Time)"))
    if current and current not in canonical_time_zones() and current in settings.TIME_ZONES:
        choices.insert(0, ("Saved earlier", [(current, current.replace("_", " "))]))
    return choices
