"""Compose (from a contact or a Regarding record) and the author's Outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.http import require_safe_or_post
from accounts.models import MailboxConnection
from accounts.paginators import KeysFirstPaginator
from accounts.tenancy import get_for_user, scoped
from activities import regarding
from activities.regarding import Regarding
from activities.selectors import email_for_user
from crm.models import Contact, Opportunity, Property, WorkTicket

from .forms import ComposeForm
from .models import OutboundEmail
from .outbox import NOT_CONNECTED, SendRefused, queue_email, retry_email, sending_connection
from .outgoing import AttachmentFile
from .replies import Mode, ReplyDraft, draft_reply


def _choice(record: Model) -> tuple[str, str]:
    return regarding.choice_of(record)  # type: ignore[arg-type]


def _emails(contacts: QuerySet[Contact] | list[Contact]) -> list[str]:
    return [contact.primary_email for contact in contacts if contact.primary_email]


def _context_of(record: Model) -> tuple[list[str], list[Model]]:
    """Who a message from this page goes to by default, and what it may be regarding."""
    if isinstance(record, Contact):
        properties = list(record.properties.all())
        records: list[Model] = [*record.opportunities.all(), *properties,
                                *WorkTicket.objects.filter(property__in=properties)]
        return _emails([record]), records
    if isinstance(record, Opportunity):
        return _emails([record.contact] if record.contact else []), [record]
    if isinstance(record, Property):
        return _emails(record.contacts.prefetch_related("emails")), [
            record, *record.opportunities.all(), *record.work_tickets.all()
        ]
    assert isinstance(record, WorkTicket)
    return _emails(record.property.contacts.prefetch_related("emails")), [record]


def _sender(request: HttpRequest) -> MailboxConnection | None:
    """The connection mail written now goes out through; None when there is none (the page says so)."""
    try:
        return sending_connection(request.user)  # type: ignore[arg-type]
    except SendRefused:
        return None


def _posted_form(request: HttpRequest, choices: list[tuple[str, str]], *, message_required: bool = True) -> ComposeForm:
    return ComposeForm(request.POST, regarding_choices=choices, files_list=request.FILES.getlist("attachments"),
                       message_required=message_required)


def _regarding(user: Any, value: str) -> Regarding | None:
    return regarding.record_for_user(user, value) if value else None


@login_required
@require_safe_or_post
def compose_to_contact(request: HttpRequest, pk: str) -> HttpResponse:
    contact = get_for_user(Contact.objects.prefetch_related("emails"), request.user, pk)
    return _compose(request, contact, preselected=None)


@login_required
@require_safe_or_post
def compose_regarding(request: HttpRequest, kind: str, pk: str) -> HttpResponse:
    record = get_for_user(regarding.model_for(kind), request.user, pk)
    return _compose(request, record, preselected=record)


def _compose(request: HttpRequest, record: Model, *, preselected: Model | None) -> HttpResponse:
    recipients, related = _context_of(record)
    choices = [_choice(item) for item in related]
    connection = _sender(request)
    if request.method == "POST":
        form = _posted_form(request, choices)
        if (queued := _queued(request, form, connection)) is not None:
            return queued
    else:
        form = ComposeForm(
            initial={"to": ", ".join(recipients), "regarding": _choice(preselected)[0] if preselected else ""},
            regarding_choices=choices,
        )
    return render(request, "mailsync/compose.html", {
        "form": form, "record": record, "connection": connection, "not_connected": NOT_CONNECTED,
    })


@login_required
@require_safe_or_post
def reply(request: HttpRequest, pk: str, mode: str) -> HttpResponse:
    """Reply, Reply all or Forward on an email the user may read: the compose form, filled in as
    mail clients fill it, through the same send queue as any mail written in Aspire."""
    try:
        chosen = Mode(mode)
    except ValueError:
        raise Http404("No such way to answer an email.") from None
    original = email_for_user(request.user, pk)
    draft = draft_reply(author=request.user, original=original, mode=chosen)
    related: list[Model] = []
    for contact in original.contacts.all():
        related.extend(_context_of(contact)[1])
    if original.regarding is not None:
        related.insert(0, original.regarding)  # type: ignore[arg-type]
    choices = list(dict.fromkeys(_choice(item) for item in related))
    connection = _sender(request)
    if request.method == "POST":
        form = _posted_form(request, choices, message_required=chosen.needs_words)
        kept = set(request.POST.getlist("keep_attachment"))
        forwarded = [a for a in draft.attachments if str(a.pk) in kept]
        if (queued := _queued(request, form, connection, forwarded=forwarded, reply=draft)) is not None:
            return queued
    else:
        kept = {str(a.pk) for a in draft.attachments}
        regarding_value = _choice(original.regarding)[0] if original.regarding is not None else ""  # type: ignore[arg-type]
        form = ComposeForm(initial={"to": ", ".join(draft.to), "cc": ", ".join(draft.cc), "subject": draft.subject,
                                    "regarding": regarding_value}, regarding_choices=choices,
                           message_required=chosen.needs_words)
    return render(request, "mailsync/reply.html", {
        "form": form, "draft": draft, "original": original, "connection": connection,
        "not_connected": NOT_CONNECTED, "kept": kept, "title": _title(draft),
    })


def _queued(request: HttpRequest, form: ComposeForm, connection: MailboxConnection | None, *,
            forwarded: Sequence[Any] = (), reply: ReplyDraft | None = None) -> HttpResponse | None:
    """Queue what the compose form holds (written afresh, or an answer to ``reply``'s original,
    with the ``forwarded`` stored attachments it keeps): the outbound message's page, or None
    with the reasons on the form."""
    if connection is None:
        form.add_error(None, NOT_CONNECTED)
    if not form.is_valid():
        return None
    try:
        outbound = queue_email(
            author=request.user,  # type: ignore[arg-type]
            to=", ".join(form.cleaned_data["to"]), cc=", ".join(form.cleaned_data["cc"]),
            subject=form.cleaned_data["subject"], body=form.cleaned_data["body"],
            attachments=[*_forwarded_files(forwarded), *form.attachments()],
            regarding=_regarding(request.user, form.cleaned_data["regarding"]), reply=reply,
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    except SendRefused as exc:
        form.add_error(None, exc.message)
        return None
    messages.success(request, "Your message is queued and will go out from your mailbox shortly.")
    return redirect("mailsync:outbound_detail", pk=outbound.pk)


def _title(draft: ReplyDraft) -> str:
    return f"{draft.mode.label}: {draft.original.subject or '(no subject)'}"


def _forwarded_files(stored: Sequence[Any]) -> list[AttachmentFile]:
    files = []
    for attachment in stored:
        with attachment.file.open("rb") as handle:
            files.append(AttachmentFile(attachment.filename, attachment.content_type, handle.read()))
    return files


def _outbox(user: Any) -> QuerySet[OutboundEmail]:
    """The user's own outgoing mail: nobody else's, whatever their role."""
    return scoped(OutboundEmail, user).filter(author_id=user.pk)


OUTBOX_PAGE_SIZE = 25


@login_required
@require_safe
def outbox(request: HttpRequest) -> HttpResponse:
    items = _outbox(request.user).select_related("connection").order_by("-created_at", "-id")
    page = KeysFirstPaginator(items, OUTBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "mailsync/outbox.html", {"page": page})


@login_required
@require_safe
def outbound_detail(request: HttpRequest, pk: str) -> HttpResponse:
    item = get_for_user(_outbox(request.user).select_related(
        "connection", *regarding.FIELDS
    ).prefetch_related("attachments", "contacts"), request.user, pk)
    return render(request, "mailsync/outbound_detail.html", {"item": item})


@login_required
@require_POST
def retry(request: HttpRequest, pk: str) -> HttpResponse:
    item = get_for_user(_outbox(request.user), request.user, pk)
    if retry_email(outbound=item):
        messages.success(request, "Queued again: Aspire will send it shortly.")
    else:
        messages.info(request, "Only a message that failed can be sent again.")
    return redirect("mailsync:outbound_detail", pk=item.pk)
