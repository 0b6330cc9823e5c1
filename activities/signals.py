"""The last line of tenancy for an activity's contacts, whichever code path adds them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, pre_delete
from django.dispatch import receiver

from accounts.tenancy import refuse_foreign_links
from crm.models import Contact

from .models import Activity, ActivityContact
from .services import refresh_contact_links


@receiver(m2m_changed, sender=Activity.contacts.through)
def refuse_foreign_activity_contacts(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    refuse_foreign_links(instance=instance, action=action, model=model, pk_set=pk_set, field="contacts")


@receiver(m2m_changed, sender=Activity.contacts.through)
def keep_contact_links_current(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    # Forward, ``instance`` is the activity; reverse (``contact.activities``), it is the contact.
    if action == "pre_clear" and reverse:
        instance._cleared_activity_ids = list(instance.activity_links.values_list("activity_id", flat=True))
    elif action in ("post_add", "post_remove") and pk_set:
        refresh_contact_links(pk_set if reverse else [instance.pk])
    elif action == "post_clear":
        refresh_contact_links(getattr(instance, "_cleared_activity_ids", []) if reverse else [instance.pk])


@receiver(pre_delete, sender=Contact)
def remember_activities_of_deleted_contact(sender: Any, instance: Contact, **kwargs: Any) -> None:
    instance._linked_activity_ids = list(  # type: ignore[attr-defined]
        ActivityContact.objects.filter(contact_id=instance.pk).values_list("activity_id", flat=True)
    )


@receiver(post_delete, sender=Contact)
def refresh_activities_of_deleted_contact(sender: Any, instance: Contact, **kwargs: Any) -> None:
    # Mail filed only on this contact is unmatched again: it goes back to its capturer's list.
    refresh_contact_links(getattr(instance, "_linked_activity_ids", []))
