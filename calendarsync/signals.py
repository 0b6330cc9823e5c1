"""The last line of tenancy for an appointment's colleagues, whichever code path adds them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts.tenancy import refuse_foreign_links

from .models import Appointment


@receiver(m2m_changed, sender=Appointment.colleagues.through)
def refuse_foreign_colleagues(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    refuse_foreign_links(instance=instance, action=action, model=model, pk_set=pk_set, field="colleagues")
