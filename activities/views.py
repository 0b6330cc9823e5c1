"""Reading an email in Aspire, its attachments, its Regarding, and the Unmatched list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from accounts.paginators import KeysFirstPaginator
from accounts.tenancy import get_for_user
from crm.models import Contact

from . import selectors, services
from .conversations import stop_following as stop_following_conversation
from .email_html import clean_email_html, email_page_csp
from .forms import EmailSearchForm
from .models import Activity, EmailMessage
from .people import people, person
from .record_actions import actions_for
from .regarding import Regarding, value_of

UNMATCHED_PAGE_SIZE = 25
# Types a browser only ever shows passively. Anything else (HTML, SVG, XML, scripts, unknown
# types) is served as plain bytes, so an attachment can never run as a page of this site.
PASSIVE_CONTENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/heic",
        "text/plain",
        "text/csv",
        "audio/mpeg",
        "video/mp4",
        "video/quicktime",
    }
)


@login_required
@require_safe
def email_detail(request: HttpRequest, pk: str) -> HttpResponse:
    activity = selectors.email_for_user(request.user, pk)
    show_images = request.GET.get("images") == "1"
    email = _email_of(activity)
    attachments = list(email.attachments.all()) if email else []
    contacts = list(activity.contacts.all())
    conversation = selectors.conversation_for_email(request.user, activity)
    regarding_q = request.GET.get("regarding_q", "").strip()
    contact_q = request.GET.get("contact_q", "").strip()

    body_html, blocked_images = "", 0
    if email and email.html_body:
        inline = {
            a.content_id: reverse("activities:attachment", args=[activity.pk, a.pk])
            for a in attachments
            if a.content_id and a.file and not a.too_large
        }
        body = clean_email_html(email.html_body, inline_images=inline, allow_remote_images=show_images)
        body_html, blocked_images = body.html, body.blocked_images

    context = {
        "activity": activity,
        "email": email,
        "sender": person(email.from_name, email.from_address) if email else "",
        "to": people(email.to) if email else [],
        "cc": people(email.cc) if email else [],
        "contacts": contacts,
        "body_html": body_html,
        "text_body": (email.text_body if email else activity.body),
        "blocked_images": blocked_images,
        "show_images": show_images,
        "attachments": attachments,
        "attachment_limit_mb": settings.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        "regarding_q": regarding_q,
        "regarding_results": selectors.regarding_choices(request.user, regarding_q),
        "contact_q": contact_q,
        "contact_results": selectors.contact_choices(request.user, contact_q) if not contacts else [],
        "conversation": conversation,
        "can_stop_following": selectors.may_stop_following(request.user, conversation),
        "conversation_messages": selectors.conversation_for_user(request.user, activity),
        "actions": actions_for(activity, request.user),
        "new_contact": _new_contact_from(email) if email and not contacts else None,
    }
    response = render(request, "activities/email_detail.html", context)
    response["Content-Security-Policy"] = email_page_csp(allow_remote_images=show_images)
    return response


@login_required
@require_safe
def attachment_download(request: HttpRequest, pk: str, attachment_pk: str) -> FileResponse:
    activity = selectors.email_for_user(request.user, pk)
    attachment = selectors.attachment_for_user(request.user, activity, attachment_pk)
    content_type = attachment.content_type.split(";")[0].strip().lower()
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=content_type if content_type in PASSIVE_CONTENT_TYPES else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def email_action(action: Callable[[HttpRequest, Activity], HttpResponse | None]) -> Callable[..., HttpResponse]:
    """An action on an email's page: a POST by a signed-in user on an email they may see, which
    comes back to that email's page unless the action answers otherwise."""

    @login_required
    @require_POST
    @wraps(action)
    def view(request: HttpRequest, pk: str) -> HttpResponse:
        activity = selectors.email_for_user(request.user, pk)
        return action(request, activity) or redirect("activities:email_detail", pk=activity.pk)

    return view


@email_action
def set_regarding(request: HttpRequest, activity: Activity) -> None:
    if "clear" in request.POST:
        services.set_regarding(activity=activity, regarding=None)
        messages.success(request, "Regarding cleared.")
    elif value := request.POST.get("regarding", ""):
        record = selectors.regarding_for_user(request.user, value)
        services.set_regarding(activity=activity, regarding=record)
        messages.success(request, f"This email is now regarding {record}, and shows on its page.")
    else:
        messages.error(request, "Choose an opportunity, property or work ticket first.")


@email_action
def stop_following(request: HttpRequest, activity: Activity) -> None:
    """Stop capturing this email's conversation automatically (what is in Aspire stays)."""
    conversation = selectors.conversation_to_stop_following(request.user, activity)
    if conversation is not None:
        stop_following_conversation(conversation=conversation, user=request.user)  # type: ignore[arg-type]
        messages.success(request, "Later replies in this conversation won't be captured automatically.")


@email_action
def file_on_contact(request: HttpRequest, activity: Activity) -> None:
    if not request.POST.get("contact"):
        messages.error(request, "Choose a contact first.")
        return
    contact = get_for_user(Contact, request.user, request.POST["contact"])
    if request.POST.get("add_address"):
        # "Add this address to an existing contact": the sender's address joins the contact, and
        # every unmatched email from it is filed there too.
        email = _email_of(activity)
        try:
            filed = services.file_sender_on_contact(activity=activity, contact=contact,
                                                    address=email.from_address if email else "")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return
        messages.success(request, f"{filed.contact.name} has this address now. {_filed_message(filed.filed)}")
        return
    services.file_on_contact(activity=activity, contact=contact)
    messages.success(request, f"Filed on {contact.name}. It shows on their activities now.")


@email_action
def create_contact_from_email(request: HttpRequest, activity: Activity) -> HttpResponse | None:
    """Unmatched mail: "Create contact" from the sender's name and address (as edited)."""
    try:
        filed = services.file_sender_on_contact(
            activity=activity, address=request.POST.get("address", ""),
            first_name=request.POST.get("first_name", ""), last_name=request.POST.get("last_name", ""),
            company_name=request.POST.get("company_name", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("activities:email_detail", args=[activity.pk]) + "#create-contact")
    messages.success(request, f"{filed.contact.name} is a contact now. {_filed_message(filed.filed)}")
    return None


def _new_contact_from(email: EmailMessage) -> dict[str, str] | None:
    """What "Create contact" starts with: the sender's name, split at its last space, and address."""
    if "@" not in email.from_address:
        return None
    name = " ".join(email.from_name.split())
    if "@" in name:
        name = ""
    first, _, last = name.rpartition(" ") if " " in name else (name, "", "")
    return {"first_name": first, "last_name": last, "address": email.from_address.lower()}


def _filed_message(count: int) -> str:
    if count == 1:
        return "This email is filed on them."
    return f"This email and {count - 1} other{'s' if count > 2 else ''} from the same address are filed on them."


@login_required
@require_safe
def regarding_search(request: HttpRequest) -> JsonResponse:
    choices = selectors.regarding_choices(request.user, request.GET.get("q", ""))
    return JsonResponse({"results": [asdict(choice) for choice in choices]})


@login_required
@require_safe
def contact_search(request: HttpRequest) -> JsonResponse:
    choices = selectors.contact_choices(request.user, request.GET.get("q", ""))
    return JsonResponse({"results": [asdict(choice) for choice in choices]})


SEARCH_PAGE_SIZE = 20


@login_required
@require_safe
def email_search(request: HttpRequest) -> HttpResponse:
    """Find any email of the company: words, and filters, newest first, a page at a time by key."""
    form = EmailSearchForm(request.GET or None)
    page, filters, contact, regarding_record = None, None, None, None
    contact_results: list[selectors.Choice] = []
    regarding_results: list[selectors.Choice] = []
    contact_q = regarding_q = ""
    if form.is_valid():
        data = form.cleaned_data
        # A match picked in a chooser replaces the filter chosen before; each is looked up in
        # the user's company (another company's is a 404, as by URL).
        contact_id = data["contact_pick"] or data["contact"]
        if contact_id:
            contact = get_for_user(Contact, request.user, contact_id)
        regarding_value = data["regarding_pick"] or data["regarding"]
        if regarding_value:
            regarding_record = selectors.regarding_for_user(request.user, regarding_value)
        # What was typed in a chooser stays, with its matches, until one is picked.
        if not data["contact_pick"]:
            contact_q = data["contact_q"].strip()
            contact_results = selectors.contact_choices(request.user, contact_q)
        if not data["regarding_pick"]:
            regarding_q = data["regarding_q"].strip()
            regarding_results = selectors.regarding_choices(request.user, regarding_q)
        filters = selectors.EmailFilters(
            q=data["q"], contact=contact, regarding=regarding_record, origin=data["origin"], since=data["since"],
            until=data["until"], has_attachment=data["attachment"])
    if filters is not None and filters.any:
        timeline = selectors.email_search(request.user, filters, time_zone=timezone.get_current_timezone())
        page = selectors.timeline_page(timeline, per_page=SEARCH_PAGE_SIZE, number=request.GET.get("page"),
                                       before=request.GET.get("before"), after=request.GET.get("after"))
    kept = _search_params(request, contact=contact, regarding=regarding_record)
    return render(request, "activities/search.html", {
        "form": form, "page": page, "contact": contact, "regarding": regarding_record,
        "regarding_value": value_of(regarding_record) if regarding_record is not None else "",
        "contact_q": contact_q, "contact_results": contact_results,
        "regarding_q": regarding_q, "regarding_results": regarding_results,
        "params": kept.urlencode(), "count_limit": selectors.SEARCH_COUNT_LIMIT,
        "without_contact": _without(kept, "contact"), "without_regarding": _without(kept, "regarding"),
    })


# What a search's links carry over: its filters, not the choosers' typing or the page it was on.
CHOOSER_PARAMS = ("find", "contact_q", "contact_pick", "regarding_q", "regarding_pick", "page", "before", "after")


def _search_params(request: HttpRequest, *, contact: Contact | None, regarding: Regarding | None) -> QueryDict:
    kept = request.GET.copy()
    for name in CHOOSER_PARAMS:
        kept.pop(name, None)
    kept.pop("contact", None)
    kept.pop("regarding", None)
    if contact is not None:
        kept["contact"] = str(contact.pk)
    if regarding is not None:
        kept["regarding"] = value_of(regarding)
    return kept


def _without(kept: QueryDict, name: str) -> str:
    rest = kept.copy()
    rest.pop(name, None)
    return rest.urlencode()


@login_required
@require_safe
def unmatched(request: HttpRequest) -> HttpResponse:
    page = KeysFirstPaginator(selectors.unmatched_emails(request.user), UNMATCHED_PAGE_SIZE).get_page(
        request.GET.get("page"))
    return render(request, "activities/unmatched.html", {"page": page})


def _email_of(activity: Activity) -> EmailMessage | None:
    # An email Activity made before mail capture existed has no message row: show its body as text.
    try:
        return activity.email
    except ObjectDoesNotExist:
        return None
