from django.urls import path

from . import views

app_name = "crm"
urlpatterns = [
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/<uuid:pk>/", views.contact_detail, name="contact_detail"),
    path("properties/", views.property_list, name="property_list"),
    path("properties/<uuid:pk>/", views.property_detail, name="property_detail"),
    path("opportunities/", views.opportunity_list, name="opportunity_list"),
    path("opportunities/<uuid:pk>/", views.opportunity_detail, name="opportunity_detail"),
    path("work-tickets/", views.work_ticket_list, name="work_ticket_list"),
    path("work-tickets/<uuid:pk>/", views.work_ticket_detail, name="work_ticket_detail"),
]
