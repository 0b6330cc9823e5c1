from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone

from accounts.models import TenantModel
from accounts.tenancy import ensure_same_company
from crm.models import Contact, Opportunity, Property, WorkTicket

from . import regarding as regarding_kinds
from .email_search import SearchDocument
from .regarding import Regarding


class Activity(TenantModel):
    """Something that happened with a customer: an email, an appointment or a note."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        APPOINTMENT = "appointment"
        NOTE = "note"

    class Origin(models.TextChoices):
        SENT_FROM_ASPIRE = "sent", "Sent from Aspire"
        CAPTURED = "captured", "Captured from mailbox"
        # Not dragged: a later message of a conversation already in Aspire (mailsync.follow).
        FOLLOWED = "followed", "Captured automatically"
        MADE_IN_ASPIRE = "aspire", "Made in Aspire"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MADE_IN_ASPIRE)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    subject = models.CharField(max_length=998, blank=True)  # RFC 5322's line limit
    body = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    contacts = models.ManyToManyField(Contact, through="ActivityContact", related_name="activities", blank=True)
    regarding_opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    regarding_property = models.ForeignKey(
        Property, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    regarding_work_ticket = models.ForeignKey(
        WorkTicket, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    # Whether it is on at least one contact: kept by activities.services.refresh_contact_links, so
    # the Unmatched list and its count in the top bar read a small partial index.
    filed = models.BooleanField(default=False, editable=False)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ("-occurred_at",)
        indexes = [
            # The admin's order (newest first, ties by id): read from the index, never sorted.
            models.Index(fields=["company", "-occurred_at", "-id"], name="activity_company_recent"),
            models.Index(fields=["company", "owner", "-occurred_at", "-id"], name="activity_unmatched",
                         condition=models.Q(kind="email", origin="captured", filed=False)),
        ]
        constraints = [regarding_kinds.at_most_one("activity_regarding_at_most_one")]

    def __str__(self) -> str:
        return self.subject or self.get_kind_display()

    @property
    def regarding(self) -> Regarding | None:
        return regarding_kinds.regarding_of(self)

    @regarding.setter
    def regarding(self, record: Regarding | None) -> None:
        regarding_kinds.set_regarding(self, record)

    def clean(self) -> None:
        ensure_same_company(self.company_id, self.owner, field="owner")
        ensure_same_company(self.company_id, self.regarding, field="regarding")

    def save(self, *args: Any, **kwargs: Any) -> None:
        moved = not self._state.adding and "occurred_at" in (kwargs.get("update_fields") or ("occurred_at",))
        super().save(*args, **kwargs)
        if moved:
            from .services import refresh_contact_links

            refresh_contact_links([self.pk])


class ActivityContact(models.Model):
    """An activity on a contact's timeline. It carries the activity's time, so a contact's timeline
    is read newest first from one index however many activities the contact has, and a deep page
    is found by key. Kept by ``activities.services.refresh_contact_links``."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="contact_links")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="activity_links")
    occurred_at = models.DateTimeField(null=True, editable=False)

    class Meta:
        db_table = "activities_activity_contacts"
        unique_together = [("activity", "contact")]
        indexes = [models.Index(fields=["contact", "-occurred_at", "-activity"], name="activity_contact_timeline")]

    def __str__(self) -> str:
        return str(self.contact)

    # One link at a time (the admin's inline): the same company rule as adding through
    # ``activity.contacts`` (activities.signals), and the same upkeep afterwards.
    def save(self, *args: Any, **kwargs: Any) -> None:
        ensure_same_company(self.activity.company_id, self.contact, field="contacts")
        super().save(*args, **kwargs)
        from .services import refresh_contact_links

        refresh_contact_links([self.activity_id])

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        deleted = super().delete(*args, **kwargs)
        from .services import refresh_contact_links

        refresh_contact_links([self.activity_id])
        return deleted


def attachment_path(instance: EmailAttachment, filename: str) -> str:
    # Stored under a random name: the original name is kept in the row and used on download.
    return f"attachments/{instance.company_id}/{uuid.uuid4().hex}"


class Conversation(TenantModel):
    """The emails of one thread, as In-Reply-To / References and the providers group them. Once a
    message of it is in Aspire (dragged, or sent from Aspire), later ones are captured on their own
    for users who follow conversations, until someone stops following it."""

    # The first message of it in Aspire: nothing older is captured automatically.
    started_at = models.DateTimeField(default=timezone.now)
    following = models.BooleanField(default=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    def __str__(self) -> str:
        return f"Conversation since {self.started_at:%Y-%m-%d}"


class EmailMessage(models.Model):
    """The email behind an email Activity: one per real email per company, however many
    mailboxes it was captured from."""

    activity = models.OneToOneField(Activity, on_delete=models.CASCADE, primary_key=True, related_name="email")
    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="+")
    # The Message-ID, or a digest of the message for mail without one (see mailsync.mime.digest).
    dedupe_key = models.CharField(max_length=1000)
    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    from_name = models.CharField(max_length=300, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list)  # [[name, address], ...]
    cc = models.JSONField(default=list)
    reply_to = models.JSONField(default=list)  # where the sender asks replies to go (Reply-To)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    size = models.PositiveIntegerField(default=0)
    problems = models.TextField(blank=True)  # what was malformed or guessed, in plain words
    conversation = models.ForeignKey(Conversation, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="emails")
    # What "Find any email" searches: subject, sender, attachment names and body, written once with
    # the email (activities.email_search.search_text), and its words as a tsvector the database keeps
    # (PostgreSQL; GIN index in migration 0008). SQLite keeps the text and matches it with LIKE.
    search_text = models.TextField(blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchDocument("search_text"), output_field=SearchVectorField(), db_persist=True)
    # The activity's time, copied onto the email so a search reads one table newest first and
    # narrows a word's index matches to a date range before reading rows. PostgreSQL keeps it
    # (triggers in migration 0009, whatever writes the rows); SQLite leaves it empty, as its
    # search reads the activity's own.
    occurred_at = models.DateTimeField(null=True, editable=False)
    # "Has an attachment": a file that is not inline. The database keeps it from the attachment rows
    # (triggers in migration 0010, whatever writes them); mail sent from Aspire, whose files are
    # kept with the outbound message, sets it when written. Find email reads it, on PostgreSQL
    # through its own partial index.
    has_attachment = models.BooleanField(default=False, editable=False)

    class Meta:
        # A reply's In-Reply-To / References are looked up by their dedupe keys, through this.
        constraints = [models.UniqueConstraint("company", "dedupe_key", name="one_email_per_company")]
        indexes = [models.Index(fields=["company", "-occurred_at", "-activity"], name="emailmessage_attachment_recent",
                                condition=models.Q(has_attachment=True))]

    def __str__(self) -> str:
        return self.activity.subject


class EmailAttachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="attachments")
    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_id = models.CharField(max_length=255, blank=True)
    inline = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=attachment_path, max_length=300, blank=True)
    # Larger than we keep: listed with its name and size, not stored.
    too_large = models.BooleanField(default=False)

    class Meta:
        ordering = ("filename",)

    def __str__(self) -> str:
        return self.filename
