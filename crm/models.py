from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from accounts.models import TenantModel
from accounts.tenancy import ensure_same_company


class Contact(TenantModel):
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company_name = models.CharField("customer company", max_length=200, blank=True)
    phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ("last_name", "first_name")
        # Lists are sorted by name with the id last, so pages hold the same rows however ties fall.
        # Text search has trigram indexes of its own (migration 0002; PostgreSQL only).
        indexes = [models.Index(fields=["company", "last_name", "first_name", "id"], name="contact_company_name")]

    def get_absolute_url(self) -> str:
        return reverse("activities:contact_detail", args=[self.pk])

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.company_name or "(no name)"

    @property
    def primary_email(self) -> str:
        emails = list(self.emails.all())
        primary = next((e for e in emails if e.is_primary), emails[0] if emails else None)
        return primary.address if primary else ""


class ContactEmail(TenantModel):
    """One of a contact's email addresses; mail is matched to contacts by these (case-insensitive)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    address = models.EmailField()
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ("-is_primary", "address")
        constraints = [
            models.UniqueConstraint(Lower("address"), "contact", name="contact_email_unique_per_contact"),
        ]
        indexes = [models.Index(Lower("address"), "company", name="contact_email_match_idx")]

    def __str__(self) -> str:
        return self.address

    def clean(self) -> None:
        self.address = self.address.strip().lower()
        if self.contact_id:
            self.company_id = self.contact.company_id


class NamedRecord(TenantModel):
    """A record known by its name (a property, an opportunity): listed by it, and shown as it."""

    name = models.CharField(max_length=200)

    class Meta:
        abstract = True
        ordering = ("name",)
        # Lists sort by name with the id last (crm.views); "%(class)s" keeps each model's own index name.
        indexes = [models.Index(fields=["company", "name", "id"], name="%(class)s_company_name")]

    def __str__(self) -> str:
        return self.name


class Property(NamedRecord):
    street = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=50, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    contacts = models.ManyToManyField(Contact, related_name="properties", blank=True)

    class Meta(NamedRecord.Meta):
        verbose_name_plural = "properties"

    def get_absolute_url(self) -> str:
        return reverse("activities:property_detail", args=[self.pk])

    @property
    def address(self) -> str:
        return ", ".join(p for p in (self.street, self.city, f"{self.state} {self.postal_code}".strip()) if p)


class Opportunity(NamedRecord):
    class Stage(models.TextChoices):
        LEAD = "lead"
        ESTIMATING = "estimating"
        PROPOSED = "proposed", "Proposal sent"
        WON = "won"
        LOST = "lost"

    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities")
    property = models.ForeignKey(
        Property, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.LEAD)

    class Meta(NamedRecord.Meta):
        verbose_name_plural = "opportunities"

    def get_absolute_url(self) -> str:
        return reverse("activities:opportunity_detail", args=[self.pk])

    def clean(self) -> None:
        ensure_same_company(self.company_id, self.contact, field="contact")
        ensure_same_company(self.company_id, self.property, field="property")


class WorkTicket(TenantModel):
    number = models.PositiveIntegerField()
    property = models.ForeignKey(Property, on_delete=models.PROTECT, related_name="work_tickets")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("-number",)
        constraints = [models.UniqueConstraint("company", "number", name="work_ticket_number_unique_per_company")]

    def get_absolute_url(self) -> str:
        return reverse("activities:work_ticket_detail", args=[self.pk])

    def __str__(self) -> str:
        return f"Work ticket #{self.number}"

    def clean(self) -> None:
        if self.property_id:
            ensure_same_company(self.company_id, self.property, field="property")
