from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from providers.errors import ProviderError, SignInCancelled

from .forms import ProfileForm, SyncForm, WorkingHoursForm
from .http import require_safe_or_post
from .mailbox import (
    MailboxRefused,
    SyncChoices,
    connect_mailbox,
    disconnect_own_mailbox,
    request_sync,
    update_sync_settings,
)
from .models import MailboxConnection, User
from .notices import (
    MAIL_FAILURES,
    RECONNECT_ASK_INTERVAL,
    ReconnectNotNeeded,
    ask_to_reconnect,
    reconnect_ask_available_at,
)
from .provider_registry import get_provider
from .push import push_enabled
from .selectors import get_connection, health_summary, latest_runs, needs_signin, sync_health
from .sent_mail import sent_to, shown
from .services import set_follow_conversations, set_working_hours, update_profile
from .settings_sections import sections_for
from .signin import SignInStateInvalid, new_state, remember_signin, take_signin
from .tenancy import get_for_user

log = logging.getLogger(__name__)

DISCONNECTED = "Sync is off and your mailbox is disconnected. Activities already in Aspire stay there."


def _start_signin(request: HttpRequest, user: User, choices: SyncChoices) -> HttpResponse:
    """Send the browser to the provider's sign-in; the choices are saved only when it succeeds."""
    provider = get_provider(choices.provider)
    state = new_state()
    try:
        auth = provider.begin_sign_in(state=state, login_hint=choices.mailbox_address)
    except ProviderError as exc:
        messages.error(request, f"Couldn't reach {provider.label} to sign in. {exc.user_message}")
        return redirect("accounts:settings")
    remember_signin(request.session, user_id=user.pk, state=state, flow=auth.flow, choices=choices)
    return redirect(auth.url)


@login_required
@require_safe_or_post
def user_settings(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    connection = get_connection(user)
    profile_form = ProfileForm(request.POST or None, instance=user, prefix="profile")
    # Operators belong to no company and have no mailbox to sync: their page is the profile only.
    sync_form = (
        SyncForm(request.POST or None, user=user, prefix="sync", initial=SyncForm.initial_for(connection, user))
        if user.company_id is not None
        else None
    )
    # Working hours are changed by a post that carries them; one without them leaves them as they are.
    hours_posted = any(f"hours-{name}" in request.POST for name in WorkingHoursForm.base_fields)
    hours_form = (WorkingHoursForm(request.POST if hours_posted else None, prefix="hours",
                                   initial=WorkingHoursForm.initial_for(user))
                  if user.company_id is not None else None)
    others = [form for form in (sync_form, hours_form) if form is not None and form.is_bound]
    if request.method == "POST" and all([profile_form.is_valid(), *(form.is_valid() for form in others)]):
        update_profile(user=user, full_name=profile_form.cleaned_data["full_name"],
                       time_zone=profile_form.cleaned_data["time_zone"],
                       email_signature=profile_form.cleaned_data["email_signature"])
        if hours_form is not None and hours_form.is_bound:
            set_working_hours(user=user, days=hours_form.cleaned_data["work_days"],
                              start=hours_form.cleaned_data["work_start"], end=hours_form.cleaned_data["work_end"])
        if sync_form is None:
            messages.success(request, "Your settings are saved.")
            return redirect("accounts:settings")
        set_follow_conversations(user=user, follow=sync_form.cleaned_data["follow_conversations"])
        choices = sync_form.choices()
        if needs_signin(user, choices):
            return _start_signin(request, user, choices)
        was_connected = connection is not None and connection.state != MailboxConnection.State.DISCONNECTED
        connection = update_sync_settings(user=user, choices=choices)
        if was_connected and not choices.wants_sync:
            messages.success(request, DISCONNECTED)
        else:
            messages.success(request, "Your settings are saved.")
        return redirect("accounts:settings")
    return render(request, "accounts/settings.html", {
        "profile_form": profile_form, "sync_form": sync_form, "connection": connection,
        "hours_form": hours_form,
        "forms": [form for form in (sync_form, hours_form, profile_form) if form is not None],
        "colleagues_needing_signin": _colleagues_needing_signin(user),
        "last_runs": latest_runs(connection) if connection else [],
        "sections": sections_for(user),
    })


def _colleagues_needing_signin(user: User) -> list[MailboxConnection]:
    if not user.is_company_admin:
        return []
    return list(
        MailboxConnection.objects.filter(company_id=user.tenant_id, state=MailboxConnection.State.NEEDS_SIGNIN)
        .exclude(user=user).select_related("user")
    )


@login_required
@require_safe
def mailbox_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back after sign-in."""
    user: User = request.user  # type: ignore[assignment]
    try:
        pending = take_signin(request.session, user_id=user.pk, state=request.GET.get("state", ""))
    except SignInStateInvalid as exc:
        messages.error(request, f"{exc} Nothing was connected; please save your settings again.")
        return redirect("accounts:settings")
    provider = get_provider(pending.provider)
    try:
        grant = provider.complete_sign_in(flow=pending.flow, params=request.GET.dict())
        identity = provider.identify(grant)
    except SignInCancelled as exc:
        messages.info(request, exc.user_message)
        return redirect("accounts:settings")
    except ProviderError as exc:
        messages.error(request, exc.user_message)
        return redirect("accounts:settings")
    try:
        connection = connect_mailbox(user=user, choices=pending.choices, grant=grant, identity=identity)
    except MailboxRefused as exc:
        messages.error(request, exc.message)
        return redirect("accounts:settings")
    name = f"{connection.display_name} <{connection.mailbox_address}>" if connection.display_name else (
        connection.mailbox_address
    )
    messages.success(request, f"Connected as {name}.")
    return redirect("accounts:settings")


@login_required
@require_POST
def mailbox_sync_now(request: HttpRequest) -> HttpResponse:
    connection = get_connection(request.user)  # type: ignore[arg-type]
    if connection is None or not connection.is_connected:
        messages.error(request, "Connect your mailbox first.")
    else:
        request_sync(connection=connection)
        messages.success(request, "Sync requested. New mail and appointments will show up shortly.")
    return redirect("accounts:settings")


@login_required
@require_POST
def mailbox_reconnect(request: HttpRequest) -> HttpResponse:
    """Sign in again with the same settings (after "needs sign-in")."""
    user: User = request.user  # type: ignore[assignment]
    connection = get_connection(user)
    if connection is None:
        return redirect("accounts:settings")
    choices = SyncChoices(
        sync_email=connection.sync_email, sync_calendar=connection.sync_calendar,
        sync_aspire_folder=connection.sync_aspire_folder, calendar_privacy=connection.calendar_privacy,
        shared_with=tuple(str(u.pk) for u in connection.shared_with.all()), provider=connection.provider,
        mailbox_address=connection.mailbox_address,
    )
    if not choices.wants_sync:
        choices = SyncChoices(**{**choices.__dict__, "sync_email": True, "sync_calendar": True})
    return _start_signin(request, user, choices)


@login_required
@require_safe_or_post
def mailbox_disconnect(request: HttpRequest) -> HttpResponse:
    """Disconnect, after a confirmation that says what stops and what stays."""
    user: User = request.user  # type: ignore[assignment]
    connection = get_connection(user)
    if connection is None or connection.state == MailboxConnection.State.DISCONNECTED:
        messages.info(request, "No mailbox is connected.")
        return redirect("accounts:settings")
    if request.method == "POST":
        disconnect_own_mailbox(user=user)
        messages.success(request, DISCONNECTED)
        return redirect("accounts:settings")
    return render(request, "accounts/disconnect.html", {"connection": connection})


# -- Sync health: the company admin's view of everyone's connection ----------------------------


def _company_admin(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not user.is_company_admin:
        raise PermissionDenied("Sync health is for company admins.")
    return user


@login_required
@require_safe
def sync_health_page(request: HttpRequest) -> HttpResponse:
    admin = _company_admin(request)
    rows = sync_health(admin)
    return render(request, "accounts/sync_health.html", {
        "rows": rows, "summary": health_summary(rows), "push_enabled": push_enabled(),
        "ask_interval_minutes": int(RECONNECT_ASK_INTERVAL.total_seconds() // 60),
    })


@login_required
@require_POST
def sync_health_ask_to_reconnect(request: HttpRequest, connection_id: str) -> HttpResponse:
    admin = _company_admin(request)
    connection = get_for_user(MailboxConnection.objects.select_related("user"), admin, connection_id)
    name = connection.user
    try:
        sent = ask_to_reconnect(admin=admin, connection=connection)
    except ReconnectNotNeeded:
        messages.info(request, f"{name}'s mailbox is connected: there is nothing to reconnect.")
    except MAIL_FAILURES as exc:
        log.warning("reconnect request for connection %s not sent: %s", connection.pk, exc.__class__.__name__)
        messages.error(request, f"The email to {name} could not be sent. Please try again in a few minutes.")
    else:
        if sent:
            messages.success(request, f"Asked {name} to reconnect: an email with a link to their Settings is on "
                                      f"its way to {connection.user.email}.")
        else:
            available = reconnect_ask_available_at(connection)
            when = f" You can ask again after {timezone.localtime(available):%-I:%M %p}." if available else ""
            messages.info(request, f"{name} was already asked to reconnect within the last hour.{when}")
    return redirect("accounts:sync_health")


@login_required
@require_safe
def demo_sent_mail(request: HttpRequest) -> HttpResponse:
    """The mail Aspire sent to the signed-in user, in the demo (DEBUG with the file backend) only."""
    if not shown():
        raise Http404("Sent mail is shown only in the demo.")
    user: User = request.user  # type: ignore[assignment]
    return render(request, "accounts/sent_mail.html", {"sent": sent_to(user.email)})
