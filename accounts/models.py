from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def validate_time_zone(value: str) -> None:
    if value not in settings.TIME_ZONES:
        raise ValidationError(f"“{value}” is not a known time zone.")


def time_zone_field(**kwargs: Any) -> models.CharField[str, str]:
    return models.CharField(max_length=64, default="America/Chicago", validators=[validate_time_zone], **kwargs)


# A working week where nothing else is set: Monday to Friday (Monday is 0, as Python counts), 8 to 5
# on the person's own clock. calendarsync.scheduling.working_hours_for turns these into free time.
DEFAULT_WORK_DAYS = (0, 1, 2, 3, 4)
DEFAULT_WORK_START = dt.time(8)
DEFAULT_WORK_END = dt.time(17)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NO_WORK_DAYS = "Choose at least one working day."
WORK_ENDS_BEFORE_START = "The working day must end after it starts."


def default_work_days() -> list[int]:
    return list(DEFAULT_WORK_DAYS)


def validate_work_days(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(day, int) and 0 <= day <= 6 for day in value) or (
        len(set(value)) != len(value)
    ):
        raise ValidationError("Working days are days of the week, each at most once.")
    if not value:
        raise ValidationError(NO_WORK_DAYS)


def describe_working_hours(days: Sequence[int], start: dt.time, end: dt.time) -> str:
    """Working hours in words, as people write them: "Mon-Fri, 8:00 AM-5:00 PM" (with en dashes),
    runs of three days or more joined."""
    runs: list[list[int]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    short = [name[:3] for name in WEEKDAY_NAMES]
    names = ", ".join(f"{short[run[0]]}\u2013{short[run[-1]]}" if len(run) > 2 else ", ".join(short[d] for d in run)
                      for run in runs)

    def clock(moment: dt.time) -> str:
        return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"

    return f"{names or 'No days'}, {clock(start)}\u2013{clock(end)}"


class Company(models.Model):
    """The tenant: every row that belongs to a customer's business points at one company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    time_zone = time_zone_field()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # What "Also capture replies to conversations already in Aspire" is for a user who has not
    # chosen (User.follows_conversations decides).
    follow_conversations_default = models.BooleanField(
        "capture replies to conversations in Aspire by default", default=False,
        help_text="Staff who have not chosen in their User Settings follow conversations when this is on.",
    )

    class Meta:
        verbose_name_plural = "companies"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class TenantModel(models.Model):
    """Base for every tenant-owned row: a UUID primary key (URLs use it) and its company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str | None) -> User:
        # People type their address with any capitalisation; addresses are stored lowercased.
        return self.get(email__iexact=(username or "").strip())

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """An Aspire user. Signs in with their email address and belongs to one company.

    Operators are superusers and may have no company; everyone else has one.
    """

    class Role(models.TextChoices):
        STAFF = "staff"
        ADMIN = "admin", "Company admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    time_zone = time_zone_field()
    # "Also capture replies to conversations already in Aspire": None follows the company's default.
    follow_conversations = models.BooleanField(null=True, blank=True)
    # Added below mail written in Aspire: plain text, or simple HTML (cleaned by accounts.signature).
    email_signature = models.TextField(blank=True, max_length=5000)
    # Working hours, on the user's own clock (time_zone): what Find a time offers and the calendar
    # shades. Explicit columns rather than one JSON value, so the database itself holds "ends after
    # it starts"; the days are a JSON list as Django has no portable set-of-weekdays column.
    work_days = models.JSONField("working days", default=default_work_days, validators=[validate_work_days],
                                 error_messages={"blank": NO_WORK_DAYS})
    work_start = models.TimeField("working day starts", default=DEFAULT_WORK_START)
    work_end = models.TimeField("working day ends", default=DEFAULT_WORK_END)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("full_name", "email")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_superuser=True) | models.Q(company__isnull=False),
                name="user_has_company_unless_superuser",
            ),
            models.CheckConstraint(condition=models.Q(work_end__gt=models.F("work_start")),
                                   name="user_work_ends_after_it_starts",
                                   violation_error_message=WORK_ENDS_BEFORE_START),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_company_admin(self) -> bool:
        return self.role == self.Role.ADMIN and self.company_id is not None

    @property
    def follows_conversations(self) -> bool:
        """Whether later mail of conversations in Aspire is captured from this user's mailbox: the
        user's own choice, else the company's default. The one place this is decided."""
        if self.follow_conversations is not None:
            return self.follow_conversations
        return bool(self.company is not None and self.company.follow_conversations_default)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The user's own clock: every page they open, and what Aspire writes to them."""
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def working_hours_label(self) -> str:
        return describe_working_hours(self.work_days or [], self.work_start, self.work_end)

    @property
    def tenant_id(self) -> uuid.UUID:
        """The user's company, for code that only runs for company members (not operators). An
        operator who reaches such code through a page (New appointment, a calendar link, connecting
        a mailbox) is refused with Django's 403, not a server error."""
        if self.company_id is None:
            raise PermissionDenied("This user belongs to no company.")
        return self.company_id

    @property
    def is_staff(self) -> bool:
        """Who may open the Django admin: operators, and company admins (scoped to their company)."""
        return self.is_active and (self.is_superuser or self.is_company_admin)

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()
        if not self.is_superuser and self.company_id is None:
            raise ValidationError({"company": "Every user belongs to a company."})

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class MailboxConnection(TenantModel):
    """A user's mailbox and calendar connection, and their sync settings.

    One per user. The row outlives a disconnect (its settings and history stay; its grant is
    deleted), so reconnecting later picks up where it left off.
    """

    class Provider(models.TextChoices):
        MICROSOFT = "microsoft", "Microsoft 365"
        GOOGLE = "google"

    class State(models.TextChoices):
        CONNECTED = "connected"
        NEEDS_SIGNIN = "needs_signin", "Needs sign-in"
        DISCONNECTED = "disconnected", "Not connected"

    class Privacy(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="mailbox")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    mailbox_address = models.EmailField()
    display_name = models.CharField(max_length=200, blank=True)
    provider_account_id = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DISCONNECTED)

    sync_email = models.BooleanField(default=False)
    sync_calendar = models.BooleanField(default=False)
    sync_aspire_folder = models.BooleanField(default=False)
    calendar_privacy = models.CharField(max_length=8, choices=Privacy.choices, default=Privacy.PUBLIC)
    shared_with = models.ManyToManyField(User, related_name="calendars_shared_with_me", blank=True)

    # The grant (refresh token, token cache) as a Fernet token; never shown anywhere.
    grant_ciphertext = models.TextField(blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    connected_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField("last successful sync", null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # When a company admin last asked the user to reconnect (Sync health): at most once an hour.
    reconnect_asked_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("mailbox_address",)
        constraints = [
            # One Aspire user per mailbox, across every company: two users syncing one mailbox
            # trip the provider's throttling (the help article's rule).
            models.UniqueConstraint(
                Lower("mailbox_address"),
                condition=~models.Q(state="disconnected"),
                name="one_user_per_mailbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_address} ({self.get_provider_display()})"

    @property
    def is_connected(self) -> bool:
        return self.state == self.State.CONNECTED

    @property
    def reads_mail(self) -> bool:
        """Whether the mail run has work in this mailbox: Sync Email on, and the Aspire folder
        synced or its user following conversations (replies to mail sent from Aspire, or to mail
        a colleague brought in, need no Aspire folder). The one place this is decided."""
        return self.sync_email and (self.sync_aspire_folder or self.user.follows_conversations)

    @property
    def folder_names(self) -> FolderNames:
        return FOLDER_NAMES[MailboxConnection.Provider(self.provider)]


@dataclass(frozen=True)
class FolderNames:
    """The folders Aspire reads in a mailbox, called what its provider calls them."""

    aspire: str
    inbox: str
    sent: str


# Outlook has folders, Gmail labels; each with its own names. The one place they are decided, for
# every page that names them (Sync health's mail and push rows).
FOLDER_NAMES = {
    MailboxConnection.Provider.MICROSOFT: FolderNames(aspire="Aspire folder", inbox="Inbox", sent="Sent Items"),
    MailboxConnection.Provider.GOOGLE: FolderNames(aspire="Aspire label", inbox="Inbox", sent="Sent"),
}


class SyncRun(TenantModel):
    """One sync of one connection (mail or calendar): what operators and users see of each attempt."""

    class Kind(models.TextChoices):
        MAIL = "mail"
        CALENDAR = "calendar"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Hourly schedule"
        PUSH = "push", "Provider notification"
        MANUAL = "manual", "Sync now"

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial", "Succeeded with problems"
        RETRYING = "retrying", "Paused, will resume"
        FAILED = "failed"

    connection = models.ForeignKey(MailboxConnection, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    items_seen = models.PositiveIntegerField(default=0)
    items_imported = models.PositiveIntegerField(default=0)
    items_already_there = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    provider_requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at",)
        indexes = [
            models.Index(fields=["connection", "kind", "-started_at"]),
            # The admin's order (newest first, ties by id).
            models.Index(fields=["company", "-started_at", "-id"], name="syncrun_company_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync {self.started_at:%Y-%m-%d %H:%M} ({self.get_outcome_display()})"


class PushChannel(models.Model):
    """A provider's promise to tell us when a connection's Aspire folder or calendar changes: a Graph
    subscription, a Gmail watch or a Google Calendar channel, kept by ``accounts.push`` for both."""

    class Purpose(models.TextChoices):
        # Sync health names each in the connection's provider's words (accounts.push.channel_label).
        MAIL = "mail", "Aspire folder"
        CALENDAR = "calendar"
        # Following conversations on Microsoft 365: a subscription per watched folder. (Gmail has
        # one watch per mailbox: the MAIL channel watches the Inbox and Sent labels too.)
        FOLLOW_INBOX = "follow_inbox", "Inbox (following conversations)"
        FOLLOW_SENT = "follow_sent", "Sent Items (following conversations)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(MailboxConnection, on_delete=models.CASCADE, related_name="push_channels")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    # What the channel watches: the mail folder's id (empty for a calendar).
    watched = models.CharField(max_length=500, blank=True)
    # The provider's id for it (Graph subscription id, Google channel id), and Google's resource id.
    channel_id = models.CharField(max_length=300, blank=True, db_index=True)
    resource_id = models.CharField(max_length=300, blank=True)
    # Graph's clientState / Google's channel token: notifications without it are ignored.
    secret = models.CharField(max_length=100, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Graph sends lifecycle notifications only for subscriptions made with a lifecycle URL.
    lifecycle = models.BooleanField(default=False)
    # When a set-up last failed: the next try waits, so idle runs stay at one request.
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint("connection", "purpose", name="one_push_channel_per_purpose")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} push for {self.connection_id}"
