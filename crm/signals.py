"""The last line of tenancy for many-to-many links, whichever code path adds them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts.tenancy import refuse_foreign_links

from .models import Contact, Property


@receiver(m2m_changed, sender=Property.contacts.through)
def refuse_foreign_property_contacts(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    refuse_foreign_links(instance=instance, action=action, model=model, pk_set=pk_set, field="contacts")


__all__ = ["Contact", "refuse_foreign_property_contacts"]
