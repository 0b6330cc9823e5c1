from django.urls import path

from . import hooks, views

app_name = "accounts"
urlpatterns = [
    path("settings/", views.user_settings, name="settings"),
    path("settings/mailbox/callback/", views.mailbox_callback, name="mailbox_callback"),
    path("settings/mailbox/sync-now/", views.mailbox_sync_now, name="mailbox_sync_now"),
    path("settings/mailbox/reconnect/", views.mailbox_reconnect, name="mailbox_reconnect"),
    path("settings/mailbox/disconnect/", views.mailbox_disconnect, name="mailbox_disconnect"),
    path("sync-health/", views.sync_health_page, name="sync_health"),
    path("sync-health/<uuid:connection_id>/ask-to-reconnect/", views.sync_health_ask_to_reconnect,
         name="sync_health_ask_to_reconnect"),
    # The demo's outbox (DEBUG with the file email backend only; a 404 otherwise).
    path("dev/mail/", views.demo_sent_mail, name="demo_sent_mail"),
    # Where the providers push (accounts.push): one view per kind of sender, for mail and calendar.
    path("hooks/microsoft/mail/", hooks.graph_notifications, name="hook_microsoft_mail"),
    path("hooks/microsoft/calendar/", hooks.graph_notifications, name="hook_microsoft_calendar"),
    path("hooks/microsoft/lifecycle/", hooks.graph_notifications, name="hook_microsoft_lifecycle"),
    path("hooks/google/calendar/", hooks.google_calendar_notifications, name="hook_google_calendar"),
    path("hooks/google/pubsub/", hooks.gmail_pubsub, name="hook_google_pubsub"),
]
