"""Email Activities made directly, as mail capture would store them (no provider needed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.files.base import ContentFile

from accounts.models import User
from activities.email_search import search_text
from activities.models import Activity, EmailAttachment, EmailMessage
from activities.services import create_activity
from crm.models import Contact


def make_email(
    owner: User,
    *,
    subject: str = "Backyard drainage",
    html: str = "",
    text: str = "",
    contacts: Iterable[Contact] = (),
    origin: str = Activity.Origin.CAPTURED,
    occurred_at: dt.datetime | None = None,
    **fields: Any,
) -> Activity:
    assert owner.company is not None
    activity = create_activity(
        company=owner.company,
        kind=Activity.Kind.EMAIL,
        origin=origin,
        subject=subject,
        body=text,
        owner=owner,
        contacts=contacts,
        occurred_at=occurred_at,
    )
    from_name, from_address = fields.pop("from_name", "Dana Whitfield"), fields.pop("from_address", "dana@example.com")
    EmailMessage.objects.create(
        activity=activity,
        company=owner.company,
        dedupe_key=f"<{uuid.uuid4()}@mail.example>",
        from_name=from_name,
        from_address=from_address,
        search_text=search_text(subject=subject, from_name=from_name, from_address=from_address,
                                attachment_names=fields.pop("attachment_names", ()), body=text),
        to=fields.pop("to", [["Bob Staff", "bob@greenleaf.example"]]),
        text_body=text,
        html_body=html,
        **fields,
    )
    return activity


def attach(
    activity: Activity,
    filename: str,
    content: bytes,
    *,
    content_type: str = "application/pdf",
    content_id: str = "",
    too_large: bool = False,
    size: int | None = None,
) -> EmailAttachment:
    attachment = EmailAttachment(
        email=activity.email,
        company_id=activity.company_id,
        filename=filename,
        content_type=content_type,
        size=len(content) if size is None else size,
        content_id=content_id,
        inline=bool(content_id),
        sha256=hashlib.sha256(content).hexdigest(),
        too_large=too_large,
    )
    if not too_large:
        attachment.file.save("ignored", ContentFile(content), save=False)
    attachment.save()
    return attachment


def attachment_url(attachment: EmailAttachment) -> str:
    return f"/activities/{attachment.email_id}/attachments/{attachment.pk}/"


def email_url(activity: Activity) -> str:
    return f"/activities/{activity.pk}/"
