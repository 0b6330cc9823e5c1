from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("settings/", views.user_settings, name="settings"),
    path("settings/mailbox/callback/", views.mailbox_callback, name="mailbox_callback"),
    path("settings/mailbox/sync-now/", views.mailbox_sync_now, name="mailbox_sync_now"),
    path("settings/mailbox/reconnect/", views.mailbox_reconnect, name="mailbox_reconnect"),
    path("settings/mailbox/disconnect/", views.mailbox_disconnect, name="mailbox_disconnect"),
]
