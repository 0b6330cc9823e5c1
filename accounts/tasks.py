from __future__ import annotations

from celery import shared_task

from aspire_sync.celery import connection_task
from providers.errors import ProviderError

from .grants import fresh_grant
from .mailbox import request_sync
from .models import MailboxConnection, PushChannel
from .notices import MAIL_FAILURES, send_needs_signin
from .push import aspire_folder_of, ensure_channel, ensure_mail_channels


@connection_task(name="accounts.notify_needs_signin", queue="default", retry_on=MAIL_FAILURES)
def notify_needs_signin(connection_id: str, *, owner: str) -> str:
    """The needs-sign-in email, once per transition (the transition asks for this task once); a mail
    server that is down or refuses it is tried again with the backoff (about 8 times over some
    hours), and the banner on the Settings page tells the user meanwhile."""
    return "sent" if send_needs_signin(connection_id=connection_id) else "signed in again meanwhile"


@shared_task(name="push.ensure", queue="default", ignore_result=True)
def ensure_push_channel(connection_id: str, purpose: str, force: bool = False, then_sync: bool = False) -> str:
    """Set up or renew one push channel outside a sync run: after Graph removed a subscription
    (then sync, for what changed meanwhile) or asked for it to be reauthorized."""
    try:
        connection = MailboxConnection.objects.get(pk=connection_id)
        grant = fresh_grant(connection_id=connection.pk)
    except MailboxConnection.DoesNotExist:
        return "connection gone"
    except ProviderError as exc:
        return f"no grant: {exc.__class__.__name__}"
    watched = PushChannel.objects.filter(connection=connection, purpose=purpose).values_list(
        "watched", flat=True).first() or ""
    called = ensure_channel(connection=connection, purpose=purpose, grant=grant, watched=watched, force=force)
    if then_sync:
        request_sync(connection=connection, trigger="push")
    return "set up" if called else "nothing to do"


@shared_task(name="push.refresh_mail", queue="default", ignore_result=True)
def refresh_mail_channels(connection_id: str) -> str:
    """Following or Sync Aspire Folder was turned on or off: make or stop the mail channels now.
    Before the first mail run has made the Aspire folder's channel there is nothing to change:
    that run sets up what is wanted."""
    try:
        connection = MailboxConnection.objects.select_related("user__company").get(pk=connection_id)
    except MailboxConnection.DoesNotExist:
        return "connection gone"
    # Without Sync Aspire Folder there is no Aspire folder to watch; with it, the one its channel
    # watches (none yet: the first run sets up what is wanted).
    aspire_folder_id = aspire_folder_of(connection) if connection.sync_aspire_folder else ""
    if not connection.is_connected or aspire_folder_id is None:
        return "nothing to do"
    try:
        grant = fresh_grant(connection_id=connection.pk)
    except ProviderError as exc:
        return f"no grant: {exc.__class__.__name__}"
    calls = ensure_mail_channels(connection=connection, grant=grant, aspire_folder_id=aspire_folder_id)
    return f"{calls} provider calls"
