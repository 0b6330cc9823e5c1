"""The last line of tenancy for an activity's contacts, whichever code path adds them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts.tenancy import ensure_same_company

from .models import Activity


@receiver(m2m_changed, sender=Activity.contacts.through)
def refuse_foreign_activity_contacts(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    if action != "pre_add" or not pk_set:
        return
    for other in model._default_manager.filter(pk__in=pk_set):
        # Forward: instance is the activity, others are contacts; reverse: the other way round.
        ensure_same_company(instance.company_id, other, field="contacts")
