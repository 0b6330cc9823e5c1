"""What an email, an appointment or an outbound message can be regarding: the one registry.

A Regarding is an Opportunity, a Property or a Work Ticket. Each kind has one key, used in URLs
and in the choosers' values ("work-ticket:<uuid>"), and one field name on the rows that point at
it (``regarding_work_ticket``). Models with a Regarding carry the three foreign keys and the
``at_most_one`` check; everything else asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import Http404

from accounts.tenancy import get_for_user
from crm.models import Opportunity, Property, WorkTicket

Regarding = Opportunity | Property | WorkTicket


@dataclass(frozen=True)
class RegardingKind:
    key: str
    model: type[Opportunity] | type[Property] | type[WorkTicket]
    field: str


KINDS: tuple[RegardingKind, ...] = (
    RegardingKind("opportunity", Opportunity, "regarding_opportunity"),
    RegardingKind("property", Property, "regarding_property"),
    RegardingKind("work-ticket", WorkTicket, "regarding_work_ticket"),
)
BY_KEY = {kind.key: kind for kind in KINDS}
BY_MODEL = {kind.model: kind for kind in KINDS}
FIELDS = tuple(kind.field for kind in KINDS)


def kind_of(record: Regarding) -> RegardingKind:
    return BY_MODEL[type(record)]


def value_of(record: Regarding) -> str:
    """How a chooser names the record: ``<key>:<uuid>``."""
    return f"{kind_of(record).key}:{record.pk}"


def choice_of(record: Regarding) -> tuple[str, str]:
    """A record as a chooser's option: its value, and a label that says its kind ("Property: Whitfield
    Residence"; a work ticket's own name already does)."""
    kind_name, name = str(record._meta.verbose_name).capitalize(), str(record)
    return value_of(record), name if name.startswith(kind_name) else f"{kind_name}: {name}"


def model_for(key: str) -> type[Opportunity] | type[Property] | type[WorkTicket]:
    """The model of a kind named in a URL; 404 for any other name."""
    if key not in BY_KEY:
        raise Http404("No such record.")
    return BY_KEY[key].model


def record_for_user(user: Any, value: str) -> Regarding:
    """The record a chooser posted back (``<key>:<uuid>``), of the user's company, or 404."""
    key, _, pk = value.partition(":")
    record: Regarding = get_for_user(model_for(key), user, pk)  # type: ignore[assignment]
    return record


def regarding_of(row: Any) -> Regarding | None:
    """The record a row with the three Regarding fields is regarding, if any."""
    for field in FIELDS:
        record = getattr(row, field)
        if record is not None:
            return record  # type: ignore[no-any-return]
    return None


def set_regarding(row: Any, record: Regarding | None) -> None:
    """Point a row's Regarding at ``record`` (or at nothing); the caller saves ``FIELDS``."""
    for field in FIELDS:
        setattr(row, field, None)
    if record is not None:
        setattr(row, kind_of(record).field, record)


def at_most_one(name: str) -> models.CheckConstraint:
    """The database's own guarantee that a row is regarding one record at most."""
    none = {f"{field}__isnull": True for field in FIELDS}
    condition = models.Q()
    for kept in reversed(FIELDS):
        condition |= models.Q(**{key: value for key, value in none.items() if key != f"{kept}__isnull"})
    return models.CheckConstraint(condition=condition, name=name)
