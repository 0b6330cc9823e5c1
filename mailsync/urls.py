from django.urls import path

from . import views

app_name = "mailsync"
urlpatterns = [
    path("mail/compose/contact/<uuid:pk>/", views.compose_to_contact, name="compose_to_contact"),
    path("mail/compose/<slug:kind>/<uuid:pk>/", views.compose_regarding, name="compose_regarding"),
    path("mail/reply/<uuid:pk>/<slug:mode>/", views.reply, name="reply"),
    path("mail/outbox/", views.outbox, name="outbox"),
    path("mail/outbox/<uuid:pk>/", views.outbound_detail, name="outbound_detail"),
    path("mail/outbox/<uuid:pk>/retry/", views.retry, name="retry"),
]
