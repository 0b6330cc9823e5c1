from __future__ import annotations

from django.contrib import admin

from accounts.admin import TenantAdmin, TenantInline
from accounts.search import IndexedSearchAdmin

from .models import Contact, ContactEmail, Opportunity, Property, WorkTicket


class ContactEmailInline(TenantInline):
    model = ContactEmail
    fields = ("address", "is_primary")
    extra = 1


@admin.register(Contact)
class ContactAdmin(IndexedSearchAdmin, TenantAdmin):
    list_display = ("__str__", "company_name", "phone")
    search_fields = ("first_name", "last_name", "company_name", "emails__address")
    address_search_fields = ("emails__address",)
    inlines = (ContactEmailInline,)

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        # An email address belongs to its contact's company.
        for email in formset.save(commit=False):
            email.company_id = form.instance.company_id
            email.save()
        for deleted in formset.deleted_objects:
            deleted.delete()


# Related records are chosen by search (autocomplete), not from a list of all of the company's.


@admin.register(Property)
class PropertyAdmin(TenantAdmin):
    list_display = ("name", "street", "city")
    search_fields = ("name", "street", "city", "postal_code")
    autocomplete_fields = ("contacts",)


@admin.register(Opportunity)
class OpportunityAdmin(TenantAdmin):
    list_display = ("name", "stage", "contact", "property")
    list_filter = ("stage",)
    list_select_related = ("contact", "property")
    search_fields = ("name",)
    autocomplete_fields = ("contact", "property")


@admin.register(WorkTicket)
class WorkTicketAdmin(IndexedSearchAdmin, TenantAdmin):
    list_display = ("number", "property", "description")
    list_select_related = ("property",)
    search_fields = ("description", "property__name")
    autocomplete_fields = ("property",)
