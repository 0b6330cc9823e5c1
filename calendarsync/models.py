"""Appointments, each connection's calendar sync state, and the audit entries conflicts leave."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import models

from accounts.models import MailboxConnection, TenantModel
from activities.models import Activity
from providers.calendar import PRIVATE_SENSITIVITIES

READ_ONLY_MESSAGE = (
    "This appointment was made in Outlook or Google Calendar, so it can only be changed there. "
    "Changes made there show here after the next sync."
)
SERIES_MESSAGE = "This is one occurrence of a repeating appointment: change it in Outlook or Google Calendar."
ATTENDING_MESSAGE = ("Someone else organises this appointment and you were invited to it: only the organiser "
                     "can change it. Answer the invitation in Outlook or Google Calendar.")
OUTSIDE_WINDOW_NOTE = "Moved outside the synced range"
# Appointments longer than this are found by a second, small query, so the calendar's main query
# can bound ``start`` from both sides and use the (owner, start) index whatever the history size.
LONG_APPOINTMENT = dt.timedelta(days=7)


class Appointment(TenantModel):
    """An appointment on one user's calendar: made in Aspire, or synced from their provider.

    ``start`` and ``end`` are instants (UTC in the database); ``time_zone`` is the zone it was made
    in. All-day appointments are floating dates: midnight UTC of the first day to midnight UTC of
    the day after the last, shown on those dates in every zone.
    """

    class Origin(models.TextChoices):
        ASPIRE = "aspire", "Made in Aspire"
        PROVIDER = "provider", "Made in Outlook or Google Calendar"

    class Push(models.TextChoices):
        NONE = "", "In sync"
        CREATE = "create", "To create at the provider"
        UPDATE = "update", "To update at the provider"
        DELETE = "delete", "To delete at the provider"
        # The provider refused the change (it changed there too): the next read settles it.
        CONFLICT = "conflict", "Changed in both places"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="appointments")
    connection = models.ForeignKey(
        MailboxConnection, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments"
    )
    title = models.CharField(max_length=500, blank=True)
    location = models.CharField(max_length=500, blank=True)
    notes = models.TextField(blank=True)
    # [[name, address, response], ...]; response is "accepted", "declined", "tentative" or "" (none yet).
    attendees = models.JSONField(default=list, blank=True)
    # Send the contacts and colleagues an invitation through the provider (Graph attendees; Google sendUpdates).
    invite = models.BooleanField(default=False)
    # Colleagues (users of the same company) the appointment is with: attendees at their account
    # address when ``invite`` is chosen, kept here either way so an edit shows them.
    colleagues = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="appointments_with")
    # Someone else's event the owner was invited to: who organises it, and the owner's answer.
    organizer_name = models.CharField(max_length=500, blank=True)
    organizer_address = models.CharField(max_length=500, blank=True)
    my_response = models.CharField(max_length=16, blank=True)
    # Moved at the provider to a time the sync window does not cover: kept until the provider says
    # it is gone, or the window reaches it again.
    outside_window = models.BooleanField(default=False)
    start = models.DateTimeField()
    end = models.DateTimeField()
    time_zone = models.CharField(max_length=64, default="UTC")
    all_day = models.BooleanField(default=False)
    is_long = models.BooleanField(default=False, editable=False)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.ASPIRE)
    sensitivity = models.CharField(max_length=16, default="normal")
    show_as = models.CharField(max_length=20, default="busy")
    cancelled = models.BooleanField(default=False)

    provider_event_id = models.CharField(max_length=1024, blank=True)
    ical_uid = models.CharField(max_length=1024, blank=True)
    series_id = models.CharField(max_length=1024, blank=True)
    original_start = models.DateTimeField(null=True, blank=True)
    etag = models.CharField("etag / changeKey", max_length=200, blank=True)
    problems = models.TextField(blank=True)

    # What still has to reach the provider; set with the change, cleared by the sync run.
    push = models.CharField(max_length=8, choices=Push.choices, default=Push.NONE, blank=True)
    activity = models.OneToOneField(
        Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointment"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("start",)
        indexes = [
            # A calendar's read is a range of ``start`` per owner; ``end`` in the key lets the index
            # itself drop what ended before the window, so the table is read only for what is shown.
            models.Index(fields=["owner", "start", "end"], name="appointment_owner_start"),
            # The admin's order (latest first, ties by id).
            models.Index(fields=["company", "-start", "-id"], name="appointment_company_recent"),
            # Long appointments: those still running at the window's start, ``start`` checked in the index.
            models.Index(fields=["owner", "end", "start"], name="appointment_owner_long",
                         condition=models.Q(is_long=True)),
            models.Index(fields=["connection", "push"], name="appointment_to_push",
                         condition=~models.Q(push="")),
            models.Index(fields=["connection", "series_id"], name="appointment_series",
                         condition=~models.Q(series_id="")),
        ]
        constraints = [
            models.UniqueConstraint(
                "connection", "provider_event_id", condition=~models.Q(provider_event_id=""),
                name="one_appointment_per_provider_event",
            ),
            models.CheckConstraint(condition=models.Q(end__gte=models.F("start")), name="appointment_ends_after_start"),
        ]

    def __str__(self) -> str:
        # Never the title: admin log entries and error messages must not carry private details.
        return f"Appointment {self.start:%Y-%m-%d %H:%M} UTC"

    def save(self, *args: object, **kwargs: object) -> None:
        self.is_long = self.end - self.start > LONG_APPOINTMENT
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "is_long"}  # type: ignore[misc]
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_private(self) -> bool:
        return self.sensitivity in PRIVATE_SENSITIVITIES

    @property
    def editable_in_aspire(self) -> bool:
        return not read_only_reason(origin=self.origin, in_series=bool(self.series_id),
                                    attending=bool(self.organizer_address))


def read_only_reason(*, origin: str, in_series: bool, attending: bool = False) -> str:
    """Why an appointment cannot be changed in Aspire, or "" when it can: the one rule behind every
    page, form and service. Events made in the provider are read-only in Aspire (the help article's
    rule), as are occurrences of a series, which only the provider can make, and events someone
    else organises (the owner only attends them)."""
    if attending:
        return ATTENDING_MESSAGE
    if in_series:
        return SERIES_MESSAGE
    if origin != Appointment.Origin.ASPIRE:
        return READ_ONLY_MESSAGE
    return ""


class CalendarSyncState(models.Model):
    """Where a connection's calendar sync stands: the provider's cursor, the window it covers, and
    the lease that keeps runs of one connection from overlapping."""

    connection = models.OneToOneField(
        MailboxConnection, on_delete=models.CASCADE, primary_key=True, related_name="calendar_state"
    )
    # Graph's @odata.deltaLink, or Google's nextSyncToken.
    cursor = models.TextField(blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    full_sync_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"Calendar sync of {self.connection}"


class AuditEntry(TenantModel):
    """A version of an appointment that lost: to a conflicting change at the provider, or to a
    deletion there while it was being edited in Aspire. Shown to the appointment's owner only."""

    class Kind(models.TextChoices):
        CONFLICT = "conflict", "Changed in both places"
        DELETED_AT_PROVIDER = "deleted", "Deleted in the provider while changed in Aspire"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.TextField()
    kept_version = models.JSONField(default=dict)
    seen = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["owner", "-created_at"], name="audit_owner_recent")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.created_at:%Y-%m-%d %H:%M}"


def feed_key_digest(key: str) -> str:
    """How a calendar link's key is kept and looked up: its SHA-256, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


class CalendarFeed(TenantModel):
    """A user's personal iCalendar link, for phones and other calendar apps. Only a digest of its
    key is kept: the link is shown once, when it is made, and "Reset link" makes a new one (the old
    one stops working at once)."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)

    def __str__(self) -> str:
        return f"Calendar link of {self.owner_id}"
