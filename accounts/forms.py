from __future__ import annotations

from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .mailbox import SyncChoices
from .models import NO_WORK_DAYS, WEEKDAY_NAMES, WORK_ENDS_BEFORE_START, MailboxConnection, User
from .signature import clean_signature
from .time_zones import time_zone_choices


class QuickSelect(forms.Select):
    """A select drawn in Python: Django draws each option with a template of its own, which for
    the 600 time zones was most of the settings page's time."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        chosen = "" if value is None else str(value)

        def options(choices: Any) -> SafeString:
            return format_html_join("", '<option value="{}"{}>{}</option>', (
                (option, " selected" if str(option) == chosen else "", label) for option, label in choices
            ))

        # Choices may be grouped, (group, [(value, label), ...]), as the time zones are by region.
        drawn = format_html_join("", "{}", (
            (format_html('<optgroup label="{}">{}</optgroup>', option, options(label))
             if isinstance(label, list | tuple) else options([(option, label)]),)
            for option, label in self.choices
        ))
        return format_html("<select{}>{}</select>", flatatt({**self.build_attrs(self.attrs, attrs), "name": name}),
                           drawn)


class ProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        help_text="Dates and times in Aspire are shown in this time zone.",
        widget=QuickSelect,
    )

    class Meta:
        model = User
        fields = ("full_name", "time_zone", "email_signature")
        labels = {"full_name": "Your name", "email_signature": "Email signature"}
        help_texts = {"email_signature": "Added below mail you write in Aspire. Plain text, or simple HTML "
                                         "(bold, italics, links, line breaks)."}
        widgets = {"email_signature": forms.Textarea(attrs={"rows": 4})}

    def clean_email_signature(self) -> str:
        return clean_signature(self.cleaned_data.get("email_signature") or "")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.time_zone:  # a legacy name saved earlier stays selectable
            self.fields["time_zone"].choices = time_zone_choices(self.instance.time_zone)  # type: ignore[attr-defined]


class WorkingHoursForm(forms.Form):
    """Working hours, on the user's own clock: when Find a time may propose a meeting with them."""

    work_days = forms.TypedMultipleChoiceField(
        label="Working days", choices=list(enumerate(WEEKDAY_NAMES)), coerce=int,
        widget=forms.CheckboxSelectMultiple, error_messages={"required": NO_WORK_DAYS},
    )
    work_start = forms.TimeField(label="Day starts", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    work_end = forms.TimeField(label="Day ends", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    @staticmethod
    def initial_for(user: User) -> dict[str, Any]:
        return {"work_days": user.work_days, "work_start": user.work_start, "work_end": user.work_end}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("work_start"), data.get("work_end")
        if start is not None and end is not None and end <= start:
            self.add_error("work_end", WORK_ENDS_BEFORE_START)
        return data


class SyncForm(forms.Form):
    """The Sync section of User Settings, as the help article describes it."""

    sync_email = forms.BooleanField(
        label="Sync Email", required=False,
        help_text="Mail you send from Aspire goes out through your own mailbox and shows in its Sent folder.",
    )
    sync_aspire_folder = forms.BooleanField(
        label="Sync Aspire Folder", required=False,
        help_text="Adds two folders to your mailbox, Aspire and Processed. Mail you drag into Aspire is copied "
        "to the customer's activities, then moved to Processed. Part of Sync Email.",
    )
    sync_calendar = forms.BooleanField(
        label="Sync Calendar", required=False,
        help_text="Appointments sync both ways between Aspire and your calendar.",
    )
    follow_conversations = forms.TypedChoiceField(
        label="Also capture replies to conversations already in Aspire", required=False,
        choices=[("", "Company default"), ("on", "On"), ("off", "Off")],
        coerce=lambda value: {"on": True, "off": False}.get(value), empty_value=None,
        help_text="Once a message is in Aspire, later replies in your Inbox and Sent folder are captured on "
        "their own, onto the same contacts. Never mail only among colleagues, never a blocked address. "
        "Part of Sync Email: it works without Sync Aspire Folder too, for replies to mail you send from Aspire.",
    )
    calendar_privacy = forms.ChoiceField(
        label="Calendar privacy", choices=MailboxConnection.Privacy.choices, widget=forms.RadioSelect,
        initial=MailboxConnection.Privacy.PUBLIC, required=False,
        help_text="Public: everyone in your company sees your appointments. Private: only the people you "
        "share with see the details; everyone else sees a busy block.",
    )
    shared_with = forms.ModelMultipleChoiceField(
        label="Shared with", queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "Share only with colleagues in your own company.",
            "invalid_pk_value": "Share only with colleagues in your own company.",
        },
    )
    provider = forms.ChoiceField(
        label="Provider", required=False,
        choices=[("", "Choose your provider"), *MailboxConnection.Provider.choices],
    )
    mailbox_address = forms.EmailField(
        label="Email address", required=False, help_text="The address of your own mailbox.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        colleagues = User.objects.none()
        if user.company_id is not None:
            colleagues = User.objects.filter(company_id=user.tenant_id, is_active=True).exclude(pk=user.pk)
        self.fields["shared_with"].queryset = colleagues  # type: ignore[attr-defined]
        default = "On" if user.company is not None and user.company.follow_conversations_default else "Off"
        self.fields["follow_conversations"].choices = [  # type: ignore[attr-defined]
            ("", f"Company default ({default})"), ("on", "On"), ("off", "Off")]
        if not self.is_bound:
            self.initial["follow_conversations"] = {True: "on", False: "off"}.get(
                user.follow_conversations, "")  # type: ignore[arg-type]

    def shared_with_boxes(self) -> list[tuple[str, str, str, bool]]:
        """The Shared with boxes as (id, value, label, checked), for the template to draw directly:
        a widget template per colleague would cost a company of a few hundred people most of the page."""
        bound = self["shared_with"]
        field = self.fields["shared_with"]
        checked = {str(value) for value in field.prepare_value(bound.value()) or []}
        return [(f"{bound.auto_id}_{n}", str(person.pk), str(person), str(person.pk) in checked)
                for n, person in enumerate(field.queryset)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("sync_email") or data.get("sync_calendar"):
            if not data.get("provider"):
                self.add_error("provider", "Choose Microsoft 365 or Google.")
            if not data.get("mailbox_address") and "mailbox_address" not in self.errors:
                self.add_error("mailbox_address", "Enter the email address of your mailbox.")
        return data

    def choices(self) -> SyncChoices:
        data = self.cleaned_data
        return SyncChoices(
            sync_email=data["sync_email"], sync_calendar=data["sync_calendar"],
            # A sub-option of Sync Email: off with it, whatever the box said (the help article's
            # resync steps untick Sync Email and Sync Calendar only).
            sync_aspire_folder=data["sync_aspire_folder"] and data["sync_email"],
            calendar_privacy=data["calendar_privacy"] or MailboxConnection.Privacy.PUBLIC,
            shared_with=tuple(str(u.pk) for u in data["shared_with"]), provider=data["provider"],
            mailbox_address=(data["mailbox_address"] or "").strip().lower(),
        )

    @staticmethod
    def initial_for(connection: MailboxConnection | None, user: User) -> dict[str, Any]:
        if connection is None:
            return {"mailbox_address": user.email}
        return {
            "sync_email": connection.sync_email, "sync_calendar": connection.sync_calendar,
            "sync_aspire_folder": connection.sync_aspire_folder, "calendar_privacy": connection.calendar_privacy,
            "shared_with": list(connection.shared_with.all()), "provider": connection.provider,
            "mailbox_address": connection.mailbox_address,
        }
