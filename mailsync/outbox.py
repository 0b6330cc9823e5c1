"""What a user does with mail written in Aspire: queue it, retry it. One function per action; the
sending itself is ``mailsync.sending``'s, started once the action's transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import MailboxConnection, User
from accounts.tenancy import ensure_same_company
from activities.regarding import Regarding, set_regarding
from crm.models import Contact, ContactEmail

from .models import OutboundAttachment, OutboundEmail
from .outgoing import AttachmentFile, clean_subject, new_message_id, parse_addresses
from .replies import Mode, ReplyDraft, message_bodies
from .sending import WAITING_FOR_SIGNIN, request_drain

NOT_CONNECTED = "Connect your mailbox in Settings to send mail from Aspire."


class SendRefused(Exception):
    """The message can't be queued; ``message`` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sending_connection(user: User) -> MailboxConnection:
    """The author's mailbox, if mail can be queued for it (connected, or waiting for a sign-in)."""
    connection = MailboxConnection.objects.filter(user=user).first()
    if connection is None or connection.state == MailboxConnection.State.DISCONNECTED:
        raise SendRefused(NOT_CONNECTED)
    return connection


def matching_contacts(company_id: uuid.UUID, addresses: Sequence[str]) -> list[Contact]:
    """The company's contacts with any of these addresses (case-insensitive)."""
    lowered = [address.lower() for address in addresses]
    contact_ids = (
        ContactEmail.objects.filter(company_id=company_id)
        .annotate(lower_address=Lower("address"))
        .filter(lower_address__in=lowered)
        .values("contact_id")
    )
    return list(Contact.objects.filter(company_id=company_id, pk__in=contact_ids))


@transaction.atomic
def queue_email(
    *,
    author: User,
    to: str,
    cc: str = "",
    subject: str,
    body: str,
    attachments: Sequence[AttachmentFile] = (),
    regarding: Regarding | None = None,
    reply: ReplyDraft | None = None,
) -> OutboundEmail:
    """Queue a message to go out through the author's own mailbox. ``to`` and ``cc`` are as typed
    (comma-separated); ``body`` is what the author wrote: their signature follows it, and a
    ``reply`` (or forward) quotes its original below and carries its thread headers. Raises
    ValidationError for bad input, SendRefused without a mailbox."""
    connection = sending_connection(author)
    to_addresses = parse_addresses(to, field="To")
    cc_addresses = parse_addresses(cc, field="Cc")
    if not to_addresses:
        raise ValidationError("Enter at least one address to send to.")
    total = sum(len(attachment.content) for attachment in attachments)
    if total > settings.MAIL_SEND_MAX_ATTACHMENT_BYTES:
        limit_mb = settings.MAIL_SEND_MAX_ATTACHMENT_BYTES // (1024 * 1024)
        raise ValidationError(f"Attachments can be {limit_mb} MB in all; these are {total / 1024 / 1024:.1f} MB.")
    ensure_same_company(author.tenant_id, regarding, field="regarding")
    if reply is not None:
        ensure_same_company(author.tenant_id, reply.original, field="the email replied to")
    text_body, html_body = message_bodies(text=body, signature=author.email_signature,
                                          quote=reply.quote if reply else None)
    outbound = OutboundEmail(
        company_id=author.tenant_id, author=author, connection=connection,
        message_id=new_message_id(connection.mailbox_address.rpartition("@")[2]),
        to=to_addresses, cc=cc_addresses, subject=clean_subject(subject), body=text_body, html_body=html_body,
        replying_to=reply.original if reply else None, in_reply_to=reply.in_reply_to if reply else "",
        references=" ".join(reply.references) if reply else "",
    )
    set_regarding(outbound, regarding)
    if connection.state != MailboxConnection.State.CONNECTED:
        outbound.last_error = WAITING_FOR_SIGNIN
    outbound.save()
    contacts = matching_contacts(author.tenant_id, to_addresses + cc_addresses)
    if reply is not None and reply.mode is not Mode.FORWARD:
        # A reply belongs where its original is, even when it goes to a Reply-To no contact has.
        contacts = list({*contacts, *reply.original.contacts.all()})
    outbound.contacts.set(contacts)
    for attachment in attachments:
        stored = OutboundAttachment(outbound=outbound, filename=attachment.filename,
                                    content_type=attachment.content_type, size=len(attachment.content))
        # Stored under a random name; the user's filename stays in the row and in the message.
        stored.file.save(uuid.uuid4().hex, ContentFile(attachment.content), save=False)
        stored.save()
    transaction.on_commit(lambda: request_drain(connection.pk))
    return outbound


@transaction.atomic
def retry_email(*, outbound: OutboundEmail) -> bool:
    """Queue a failed message again (its Message-ID stays, so the Sent-folder check still works).
    Never a sent one: returns False when the message was not in the failed state."""
    requeued = OutboundEmail.objects.filter(pk=outbound.pk, state=OutboundEmail.State.FAILED).update(
        state=OutboundEmail.State.QUEUED, attempts=0, not_before=timezone.now(), last_error="",
    )
    if requeued:
        transaction.on_commit(lambda: request_drain(outbound.connection_id))
    return bool(requeued)
