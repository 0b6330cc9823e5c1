from django.urls import path

from . import views

app_name = "calendarsync"

urlpatterns = [
    path("calendar/", views.calendar_page, name="calendar"),
    path("calendar/team/", views.team_view, name="team"),
    path("calendar/find-a-time/", views.find_a_time, name="find_a_time"),
    path("calendar/feed.json", views.calendar_feed, name="feed"),
    path("calendar/changes/", views.audit_entries, name="audit_entries"),
    path("calendar/link/", views.calendar_link, name="calendar_link"),
    path("calendar/personal.ics", views.personal_feed, name="personal_feed"),
    path("calendar/appointments/new/", views.appointment_create, name="appointment_create"),
    path("calendar/appointments/<uuid:pk>/", views.appointment_detail, name="appointment_detail"),
    path("calendar/appointments/<uuid:pk>/edit/", views.appointment_edit, name="appointment_edit"),
    path("calendar/appointments/<uuid:pk>/delete/", views.appointment_delete, name="appointment_delete"),
]
