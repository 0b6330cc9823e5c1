"""Admin for companies and users, and the base class that scopes every tenant admin.

Operators (superusers) see every company. Company admins see and change only their own
company's rows; another company's row is a 404 for them, as it is on every page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.filters import FieldListFilter, ListFilter
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from .mailbox import disconnect_mailbox, request_sync
from .models import Company, MailboxConnection, SyncRun, User
from .paginators import BoundedCountPaginator
from .services import invite_staff, send_password_reset, set_company_follow_default
from .tenancy import admin_scoped


def _company_id(request: HttpRequest) -> Any:
    return getattr(request.user, "company_id", None)


def _may_administer(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and (user.is_superuser or getattr(user, "is_company_admin", False)))


def filter_parameters(model_admin: admin.ModelAdmin, item: Any, request: HttpRequest) -> list[str]:  # type: ignore[type-arg]
    """The query-string parameters one ``list_filter`` entry reads, built the way the change list
    builds the filter (with no parameters given, so nothing is filtered)."""
    if isinstance(item, type) and issubclass(item, ListFilter):
        spec: Any = item(request, {}, model_admin.model, model_admin)
    else:
        field, filter_class = item if isinstance(item, (list, tuple)) else (item, FieldListFilter.create)
        field_path = field if isinstance(field, str) else None
        if field_path is not None:
            field = get_fields_from_path(model_admin.model, field_path)[-1]
        spec = filter_class(field, request, {}, model_admin.model, model_admin, field_path=field_path)
    return [str(name) for name in spec.expected_parameters()]


class ScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Scopes an admin to the signed-in company admin's company (``company_field``)."""

    company_field = "company"
    # Lists of a large company: count at most 2,000 rows, and never the whole table besides; 50
    # rows a page, as drawing each row (with its action checkbox) is most of a list's time.
    paginator = BoundedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        return admin_scoped(super().get_queryset(request), request.user, company_field=self.company_field)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """Only what the admin class declares: its list filters' own parameters and its date
        hierarchy. Django's default also accepts any lookup on the model's own fields, so
        ``?title__startswith=Doc`` would answer, through the row count, questions about a column the
        page never shows (a private appointment's title, an encrypted grant). Anything else is a
        DisallowedModelAdminLookup: 400."""
        if request is None:
            return False
        if lookup in self.declared_lookups(request):
            return True
        # The raw-id popups' own filters come from models' limit_choices_to, never from a visitor.
        for fk_lookup in self.model._meta.related_fkey_lookups:  # type: ignore[attr-defined]
            if callable(fk_lookup):
                fk_lookup = fk_lookup()
            if (lookup, value) in widgets.url_params_from_lookup_dict(fk_lookup).items():
                return True
        return False

    def declared_lookups(self, request: HttpRequest) -> set[str]:
        lookups: set[str] = set()
        for item in self.get_list_filter(request):
            lookups.update(filter_parameters(self, item, request))
        if self.date_hierarchy:
            lookups.update(f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        return lookups

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_administer(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _may_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def _require_visible(self, request: HttpRequest, object_id: str | None) -> None:
        # Django's admin redirects to the index for a row outside the queryset; for another
        # company's row we answer 404, like every page does.
        if object_id and self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such record.")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        self._require_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self._require_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return self._scope_choices(field, db_field, request)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return self._scope_choices(field, db_field, request)

    def _scope_choices(self, field: Any, db_field: Any, request: HttpRequest) -> Any:
        user = request.user
        if field is None or user.is_superuser:
            return field
        related = db_field.related_model
        if related is Company:
            field.queryset = field.queryset.filter(pk=_company_id(request))
        elif any(f.name == "company" for f in related._meta.get_fields()):
            field.queryset = field.queryset.filter(company_id=_company_id(request))
        return field


class TenantAdmin(ScopedAdmin):
    """Admin for a tenant-owned model: company admins never see or choose the company field."""

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("company")
        return exclude

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        return [*filters, "company"] if request.user.is_superuser else filters

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool) -> None:
        if not request.user.is_superuser:
            obj.company_id = _company_id(request)
        super().save_model(request, obj, form, change)


class TenantInline(admin.TabularInline):  # type: ignore[type-arg]
    """An inline for a tenant-owned model: the parent admin's scoping applies; the permissions
    follow the same rule as :class:`ScopedAdmin`."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_administer(request)


@admin.register(Company)
class CompanyAdmin(ScopedAdmin):
    list_display = ("name", "time_zone", "created_at")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk=_company_id(request)) if _may_administer(request) else queryset.none()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        following = obj.follow_conversations_default
        if change and "follow_conversations_default" in form.changed_data:
            # Saved through the service, so the staff following by default gain or lose their push.
            obj.follow_conversations_default = form.initial["follow_conversations_default"]
            super().save_model(request, obj, form, change)
            set_company_follow_default(company=obj, follow=following)
            return
        super().save_model(request, obj, form, change)


class StaffInviteForm(ModelForm):  # type: ignore[type-arg]
    """A company admin adds a colleague by name and email; the colleague chooses their own password
    from the link emailed to them."""

    company_id: Any = None  # the inviting admin's company, set per request

    class Meta:
        model = User
        fields = ("email", "full_name", "role")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.company_id = self.company_id  # validated as the admin's own company


@admin.register(User)
class UserAdmin(BaseUserAdmin, TenantAdmin):  # type: ignore[misc]
    """Company admins manage their staff but never know or set anyone's password, nor change the
    email address a colleague signs in with (either would let them sign in as that colleague and read
    what is private to them): they send a password-reset link to the colleague instead. Operators
    keep Django's full user admin."""

    ordering = ("email",)
    actions = ("send_password_reset_link",)
    add_form_template = "admin/accounts/user/add_form.html"
    list_display = ("email", "full_name", "company", "role", "is_active")
    list_filter = ("role", "is_active")
    list_select_related = ("company",)
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "company", "role", "time_zone", "is_active")}),
        # Shown, not edited: each person sets their own in User Settings.
        ("Working hours", {"fields": ("working_hours",)}),
        ("Operator", {"fields": ("is_superuser",)}),
    )
    readonly_fields = ("working_hours",)
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "company", "role", "password1", "password2")}),
    )
    filter_horizontal = ()

    @admin.display(description="Working hours")
    def working_hours(self, obj: User) -> str:
        return f"{obj.working_hours_label} ({obj.time_zone})"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Company admins manage their own staff; the company, operator rights and passwords are not
        # theirs to set.
        hidden = ("company", "is_superuser", "password", "password1", "password2", "usable_password")
        return [
            (name, {**opts, "fields": tuple(f for f in opts["fields"] if f not in hidden)})
            for name, opts in fieldsets
        ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None and not request.user.is_superuser:
            kwargs["form"] = type("StaffInviteForCompany", (StaffInviteForm,), {"company_id": _company_id(request)})
            return TenantAdmin.get_form(self, request, obj, change=change, **kwargs)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            readonly.append("email")  # a reset link must reach the colleague, not whoever changed it
        return readonly

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and not request.user.is_superuser:
            invite_staff(user=obj, request=request)
            self.message_user(request, f"{obj.email} will get an email to choose their password.")

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied("Send a password reset link instead: the colleague chooses their password.")
        return super().user_change_password(request, id, form_url)

    @admin.action(description="Send a password reset link")
    def send_password_reset_link(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        users = list(queryset.filter(is_active=True))
        for user in users:
            send_password_reset(user=user, request=request)
        self.message_user(request, f"Sent a password reset link to {len(users)} user(s).")

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return None  # the fieldsets above already leave the company out for company admins


@admin.register(MailboxConnection)
class MailboxConnectionAdmin(TenantAdmin):
    """Connections per company: who is connected, who needs to sign in again, and why."""

    list_display = ("mailbox_address", "user", "provider", "state", "last_sync_at", "next_sync_at", "last_error")
    list_filter = ("state", "provider")
    search_fields = ("mailbox_address", "user__email", "user__full_name")
    list_select_related = ("user",)
    actions = ("disconnect", "sync_now")
    # The grant is never shown; the rest is read-only here (users change it on their settings page).
    fields = (
        "user", "provider", "mailbox_address", "display_name", "state", "sync_email", "sync_calendar",
        "sync_aspire_folder", "calendar_privacy", "connected_at", "last_sync_at", "next_sync_at",
        "last_error", "last_error_at", "recent_runs",
    )
    readonly_fields = fields

    @admin.display(description="Recent syncs")
    def recent_runs(self, obj: MailboxConnection) -> str:
        runs = SyncRun.objects.filter(connection=obj)[:10]
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} new</td><td>{}</td></tr>",
            ((r.started_at.strftime("%Y-%m-%d %H:%M"), r.get_kind_display(), r.get_outcome_display(),
              r.items_imported, r.error) for r in runs),
        )
        return format_html("<table>{}</table>", rows) if runs else "None yet"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a connection starts with its user's own sign-in

    @admin.action(description="Disconnect (ends access; imported activities stay)")
    def disconnect(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        count = 0
        for connection in queryset.exclude(state=MailboxConnection.State.DISCONNECTED):
            with transaction.atomic():
                disconnect_mailbox(connection=connection)
            count += 1
        self.message_user(request, f"Disconnected {count} mailbox(es).")

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        connected = queryset.filter(state=MailboxConnection.State.CONNECTED)
        for connection in connected:
            request_sync(connection=connection)
        self.message_user(request, f"Sync requested for {connected.count()} mailbox(es).")


@admin.register(SyncRun)
class SyncRunAdmin(TenantAdmin):
    """Every sync attempt, its counts and what went wrong: what operators look at first."""

    list_display = ("connection", "kind", "trigger", "started_at", "finished_at", "outcome", "items_seen",
                    "items_imported", "items_failed", "error")
    # A date filter, not a date hierarchy: the hierarchy reads the dates of every row to draw itself.
    list_filter = ("kind", "outcome", "trigger", "started_at")
    search_fields = ("connection__mailbox_address",)
    list_select_related = ("connection",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in SyncRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
