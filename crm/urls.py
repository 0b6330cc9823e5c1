from django.urls import path

from . import views

app_name = "crm"
urlpatterns = [
    path("contacts/", views.record_list, {"kind": "contacts"}, name="contact_list"),
    path("properties/", views.record_list, {"kind": "properties"}, name="property_list"),
    path("opportunities/", views.record_list, {"kind": "opportunities"}, name="opportunity_list"),
    path("work-tickets/", views.record_list, {"kind": "work_tickets"}, name="work_ticket_list"),
]
