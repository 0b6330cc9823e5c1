from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import TenantModel
from accounts.tenancy import ensure_same_company
from crm.models import Contact, Opportunity, Property, WorkTicket

Regarding = Opportunity | Property | WorkTicket
REGARDING_FIELDS = {
    Opportunity: "regarding_opportunity",
    Property: "regarding_property",
    WorkTicket: "regarding_work_ticket",
}


class Activity(TenantModel):
    """Something that happened with a customer: an email, an appointment or a note."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        APPOINTMENT = "appointment", "Appointment"
        NOTE = "note", "Note"

    class Origin(models.TextChoices):
        SENT_FROM_ASPIRE = "sent", "Sent from Aspire"
        CAPTURED = "captured", "Captured from mailbox"
        MADE_IN_ASPIRE = "aspire", "Made in Aspire"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MADE_IN_ASPIRE)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    subject = models.CharField(max_length=998, blank=True)  # RFC 5322's line limit
    body = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    contacts = models.ManyToManyField(Contact, related_name="activities", blank=True)
    regarding_opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    regarding_property = models.ForeignKey(
        Property, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    regarding_work_ticket = models.ForeignKey(
        WorkTicket, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )

    class Meta:
        verbose_name_plural = "activities"
        ordering = ("-occurred_at",)
        indexes = [models.Index(fields=["company", "-occurred_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(regarding_opportunity__isnull=True, regarding_property__isnull=True)
                | models.Q(regarding_opportunity__isnull=True, regarding_work_ticket__isnull=True)
                | models.Q(regarding_property__isnull=True, regarding_work_ticket__isnull=True),
                name="activity_regarding_at_most_one",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.get_kind_display()

    @property
    def regarding(self) -> Regarding | None:
        return self.regarding_opportunity or self.regarding_property or self.regarding_work_ticket

    @regarding.setter
    def regarding(self, record: Regarding | None) -> None:
        for field in REGARDING_FIELDS.values():
            setattr(self, field, None)
        if record is not None:
            setattr(self, REGARDING_FIELDS[type(record)], record)

    def clean(self) -> None:
        ensure_same_company(self.company_id, self.owner, field="owner")
        ensure_same_company(self.company_id, self.regarding, field="regarding")
