"""What Aspire tells a user by email about their mailbox connection: that it needs them to sign in
again (once each time a connection goes to "needs sign-in", not once per failed run), and that a
company admin asks them to reconnect (from Sync health, at most once an hour per connection).

Both go through Django's email framework (``EMAIL_URL`` / ``EMAIL_BACKEND``), to the address the
user signs in to Aspire with: the mailbox itself may be the thing that stopped working."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from providers.http import retry_delay

from .models import MailboxConnection, User

log = logging.getLogger(__name__)

# One click on "Ask to reconnect" must not become a stream of mail: once per connection per hour.
RECONNECT_ASK_INTERVAL = dt.timedelta(hours=1)
# How sending mail fails: the server refused it, or could not be reached.
MAIL_FAILURES = (smtplib.SMTPException, OSError)


class ReconnectNotNeeded(Exception):
    """The connection is connected: there is nothing to reconnect."""


def settings_url() -> str:
    """The user's Settings page, as a link a mail client can open."""
    return f"{settings.SITE_URL}{reverse('accounts:settings')}"


def _send(*, template: str, user: User, context: dict[str, object]) -> None:
    context = {"user": user, "settings_url": settings_url(), **context}
    subject = " ".join(render_to_string(f"accounts/email/{template}_subject.txt", context).split())
    body = render_to_string(f"accounts/email/{template}.txt", context)
    send_mail(subject, body, None, [user.email])


def notify_needs_signin(*, connection_id: uuid.UUID | str) -> None:
    """Tell the user their connection needs them to sign in again. Called once, after the commit
    that moved the connection to "needs sign-in" (``accounts.grants``). When the mail server
    refuses it or cannot be reached, a task tries again later (``accounts.notify_needs_signin``,
    with the tasks' backoff), so a mail server that is down for a while loses no notice."""
    try:
        send_needs_signin(connection_id=connection_id)
    except MAIL_FAILURES as exc:  # the banner still tells them; an unreachable mail server must not fail a sync
        log.warning("needs-sign-in email for connection %s not sent yet: %s", connection_id, exc.__class__.__name__)
        from .tasks import notify_needs_signin as again  # the task module imports grants, which imports this

        again.apply_async((str(connection_id),), countdown=retry_delay(None, 0))


def send_needs_signin(*, connection_id: uuid.UUID | str) -> bool:
    """Email the user that their connection needs them to sign in again, unless it no longer does.
    Raises one of ``MAIL_FAILURES`` when the mail server refused it or could not be reached."""
    connection = MailboxConnection.objects.select_related("user").filter(pk=connection_id).first()
    if connection is None or connection.state != MailboxConnection.State.NEEDS_SIGNIN:
        return False  # reconnected (or gone) in the meantime: nothing to say any more
    _send(template="needs_signin", user=connection.user, context={"connection": connection})
    return True


def reconnect_ask_available_at(connection: MailboxConnection) -> dt.datetime | None:
    """When an admin may next ask this connection's user to reconnect; None: now."""
    if connection.reconnect_asked_at is None:
        return None
    available = connection.reconnect_asked_at + RECONNECT_ASK_INTERVAL
    return available if available > timezone.now() else None


def ask_to_reconnect(*, admin: User, connection: MailboxConnection) -> bool:
    """Email the connection's user a link to their Settings, on a company admin's request.

    Returns False when someone asked within the last hour (nothing is sent). The ask is claimed
    with a conditional UPDATE, so two admins pressing at once send one email; if sending fails the
    claim is given back and the error raised, so the admin can try again."""
    if connection.state == MailboxConnection.State.CONNECTED:
        raise ReconnectNotNeeded(str(connection.pk))
    now = timezone.now()
    previous = connection.reconnect_asked_at
    claimed = (
        MailboxConnection.objects.filter(pk=connection.pk, company_id=admin.tenant_id)
        .exclude(state=MailboxConnection.State.CONNECTED)
        .filter(Q(reconnect_asked_at__isnull=True) | Q(reconnect_asked_at__lte=now - RECONNECT_ASK_INTERVAL))
        .update(reconnect_asked_at=now)
    )
    if not claimed:
        return False
    try:
        _send(template="reconnect_request", user=connection.user, context={"connection": connection, "admin": admin})
    except MAIL_FAILURES:
        MailboxConnection.objects.filter(pk=connection.pk, reconnect_asked_at=now).update(reconnect_asked_at=previous)
        raise
    connection.reconnect_asked_at = now
    return True
