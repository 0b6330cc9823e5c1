from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import MailboxConnection, TenantModel
from activities import regarding
from activities.models import Activity


class MailSyncState(models.Model):
    """Per connection: where its Aspire and Processed folders are, and who is syncing it now."""

    connection = models.OneToOneField(
        MailboxConnection, on_delete=models.CASCADE, primary_key=True, related_name="mail_state"
    )
    aspire_folder_id = models.CharField(max_length=500, blank=True)
    processed_folder_id = models.CharField(max_length=500, blank=True)
    # Shown in the status panel when we had to recreate a folder the user deleted or renamed.
    folder_notice = models.CharField(max_length=500, blank=True)
    folders_checked_at = models.DateTimeField(null=True, blank=True)
    # One sync per connection at a time: a run holds this lease (claimed with a conditional UPDATE).
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    # Following conversations: where each watched folder's changes were last read (a Graph delta
    # link per folder, Gmail's history id), by folder.
    follow_cursors = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Mail sync state of {self.connection}"


class ProviderThread(models.Model):
    """A provider's own grouping of a conversation in one mailbox (Graph's conversationId, Gmail's
    threadId): how a reply without In-Reply-To / References is still recognised."""

    connection = models.ForeignKey(MailboxConnection, on_delete=models.CASCADE, related_name="+")
    thread_id = models.CharField(max_length=500)
    conversation = models.ForeignKey("activities.Conversation", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint("connection", "thread_id", name="one_thread_per_mailbox")]

    def __str__(self) -> str:
        return f"{self.thread_id} in {self.connection_id}"


class NeverCapture(TenantModel):
    """An address or a whole domain whose mail is never captured automatically (a doctor, HR, the
    owner's family), kept by the company's admins."""

    entry = models.CharField(
        "address or domain", max_length=320,
        help_text="An address (jane@clinic.example) or a domain (clinic.example); any capitalisation.",
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "never captured automatically"
        verbose_name_plural = "never captured automatically"
        ordering = ("entry",)
        constraints = [models.UniqueConstraint("company", "entry", name="one_never_capture_entry")]

    def __str__(self) -> str:
        return self.entry

    def clean(self) -> None:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        self.entry = self.entry.strip().lower().lstrip("@")
        try:
            validate_email(self.entry if "@" in self.entry else f"x@{self.entry}")
        except ValidationError as exc:
            raise ValidationError({"entry": "Enter an address (jane@clinic.example) or a domain "
                                            "(clinic.example)."}) from exc


class EmailSource(models.Model):
    """Which mailbox an email was captured from: the same email from two mailboxes is one
    Activity with two sources."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="email_sources")
    connection = models.ForeignKey(MailboxConnection, on_delete=models.CASCADE, related_name="email_sources")
    provider_message_id = models.CharField(max_length=500)
    captured_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint("connection", "provider_message_id", name="one_source_per_mailbox_message"),
        ]

    def __str__(self) -> str:
        return f"{self.activity_id} from {self.connection_id}"


class OutboundEmail(TenantModel):
    """A message written in Aspire, queued to go out through its author's own mailbox."""

    class State(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    author = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="outbound_emails")
    connection = models.ForeignKey(MailboxConnection, on_delete=models.CASCADE, related_name="outbound_emails")
    # Set before the first attempt and sent as the Message-ID header: after a failure whose outcome
    # is unknown, we look for this id in the Sent folder instead of sending a second copy.
    message_id = models.CharField(max_length=300, unique=True)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    body = models.TextField()  # the text part, as sent (signature and quoted original included)
    # The same message as HTML (multipart/alternative); empty for mail queued before it was made.
    html_body = models.TextField(blank=True)
    # A reply or a forward: the email it answers, and the thread headers (RFC 5322 3.6.4).
    replying_to = models.ForeignKey(Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    contacts = models.ManyToManyField("crm.Contact", blank=True, related_name="+")
    regarding_opportunity = models.ForeignKey("crm.Opportunity", on_delete=models.SET_NULL, null=True, blank=True,
                                              related_name="+")
    regarding_property = models.ForeignKey("crm.Property", on_delete=models.SET_NULL, null=True, blank=True,
                                           related_name="+")
    regarding_work_ticket = models.ForeignKey("crm.WorkTicket", on_delete=models.SET_NULL, null=True, blank=True,
                                              related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    activity = models.OneToOneField(Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="outbound")
    # The last attempt may have gone out (no answer came back): look for message_id in the mailbox
    # before sending again, so a message is never sent twice.
    verify_before_send = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["connection", "state", "not_before"]),
            # The author's Outbox, newest first, a page at a time.
            models.Index(fields=["company", "author", "-created_at", "-id"], name="outbound_outbox"),
        ]
        constraints = [regarding.at_most_one("outbound_regarding_at_most_one")]

    def __str__(self) -> str:
        return self.subject


class OutboundAttachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    outbound = models.ForeignKey(OutboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    file = models.FileField(upload_to="outbound/%Y/%m/", max_length=300)

    def __str__(self) -> str:
        return self.filename


class SendQueue(models.Model):
    """Per connection: who is sending its queued mail now, and when the next send may start.

    One sender per mailbox at a time holds the lease (claimed with a conditional UPDATE), so two
    workers never send the same message and the pace below holds across tasks."""

    connection = models.OneToOneField(
        MailboxConnection, on_delete=models.CASCADE, primary_key=True, related_name="send_queue"
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    next_send_at = models.DateTimeField(default=timezone.now)
    # Throttling answers without a Retry-After in a row: the mailbox's own backoff grows with them.
    throttled_in_a_row = models.PositiveIntegerField(default=0)
    # One drain pending per mailbox: when it should run (None: none asked for), the generation a
    # drain task must carry to run it (older tasks find they are superseded), and when a task for
    # it was last handed to the broker (a task lost with a killed worker is handed over again).
    drain_at = models.DateTimeField(null=True, blank=True)
    drain_generation = models.PositiveBigIntegerField(default=0)
    drain_enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["drain_at"], name="send_queue_drain_due",
                                condition=models.Q(drain_at__isnull=False))]

    def __str__(self) -> str:
        return f"Send queue of {self.connection}"
