from __future__ import annotations

from django.urls import include, path

from . import records, views

app_name = "activities"
urlpatterns = [
    path("contacts/<uuid:pk>/", records.contact_detail, name="contact_detail"),
    path("properties/<uuid:pk>/", records.property_detail, name="property_detail"),
    path("opportunities/<uuid:pk>/", records.record_detail, {"kind": "opportunities"}, name="opportunity_detail"),
    path("work-tickets/<uuid:pk>/", records.record_detail, {"kind": "work_tickets"}, name="work_ticket_detail"),
    path("activities/unmatched/", views.unmatched, name="unmatched"),
    path("activities/search/", views.email_search, name="email_search"),
    path("activities/regarding-search/", views.regarding_search, name="regarding_search"),
    path("activities/contact-search/", views.contact_search, name="contact_search"),
    # One email's pages.
    path("activities/<uuid:pk>/", include([
        path("", views.email_detail, name="email_detail"),
        path("regarding/", views.set_regarding, name="set_regarding"),
        path("contacts/", views.file_on_contact, name="file_on_contact"),
        path("stop-following/", views.stop_following, name="stop_following"),
        path("contacts/new/", views.create_contact_from_email, name="create_contact"),
        path("attachments/<uuid:attachment_pk>/", views.attachment_download, name="attachment"),
    ])),
]
