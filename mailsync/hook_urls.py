from django.urls import path

from . import webhooks

app_name = "mailsync_hooks"
urlpatterns = [
    path("microsoft/mail/", webhooks.microsoft_notifications, name="microsoft"),
    path("google/pubsub/", webhooks.google_pubsub, name="google"),
]
