from django.urls import path

from . import views

app_name = "crm"
urlpatterns = [
    path("contacts/", views.contact_list, name="contact_list"),
    path("properties/", views.property_list, name="property_list"),
    path("opportunities/", views.opportunity_list, name="opportunity_list"),
    path("work-tickets/", views.work_ticket_list, name="work_ticket_list"),
]
