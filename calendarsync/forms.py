from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts.dates import validate_supported_date
from accounts.models import User

from .selectors import AppointmentDetails
from .services import AppointmentInput

RECURRING_HELP = ("Repeating appointments can't be made in Aspire: create them in Outlook or Google Calendar, "
                  "and their occurrences show here after the next sync.")


NOT_A_COLLEAGUE = "One of the chosen colleagues is not a person of your company."


class ColleagueField(forms.ModelMultipleChoiceField):
    """The people of the user's company (the queryset the view gives). Anything else, another
    company's user or a value that is nobody's id, reads the same."""

    def clean(self, value: Any) -> Any:
        try:
            return super().clean(value)
        except forms.ValidationError as exc:
            raise forms.ValidationError(NOT_A_COLLEAGUE, code="invalid_choice") from exc


class AppointmentForm(forms.Form):
    title = forms.CharField(max_length=500)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_supported_date])
    all_day = forms.BooleanField(required=False, label="All day")
    start_time = forms.TimeField(required=False, label="Starts", widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(required=False, label="Ends", widget=forms.TimeInput(attrs={"type": "time"}))
    end_date = forms.DateField(required=False, label="Last day (all-day appointments over several days)",
                               widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_supported_date])
    location = forms.CharField(max_length=500, required=False)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    private = forms.BooleanField(required=False, label="Private: colleagues see only “Busy”")
    show_as = forms.ChoiceField(choices=(("busy", "Busy"), ("free", "Free")), initial="busy", label="Show as")
    contacts = forms.MultipleChoiceField(required=False, label="Contacts", widget=forms.CheckboxSelectMultiple)
    contact_q = forms.CharField(required=False, max_length=200, label="Find contacts")
    colleagues = ColleagueField(
        queryset=User.objects.none(), required=False, label="Colleagues", widget=forms.CheckboxSelectMultiple)
    invite = forms.BooleanField(required=False, label="Send invitations: your calendar emails the contacts and "
                                                      "colleagues an invitation")
    regarding = forms.ChoiceField(required=False, label="Regarding")
    regarding_q = forms.CharField(required=False, max_length=200, label="Find an opportunity, property or work ticket")

    def __init__(self, *args: Any, time_zone: str, contact_choices: Sequence[tuple[str, str]] = (),
                 regarding_choices: Sequence[tuple[str, str]] = (), colleague_choices: QuerySet[User] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone = time_zone
        contacts = self.fields["contacts"]
        assert isinstance(contacts, forms.MultipleChoiceField)
        contacts.choices = list(contact_choices)
        regarding = self.fields["regarding"]
        assert isinstance(regarding, forms.ChoiceField)
        regarding.choices = [("", "Nothing in particular"), *regarding_choices]
        # Only these are accepted: the user's company's other people (the view's query), so another
        # company's user is refused here, and again by the service.
        colleagues = self.fields["colleagues"]
        assert isinstance(colleagues, forms.ModelMultipleChoiceField)
        colleagues.queryset = colleague_choices if colleague_choices is not None else User.objects.none()


    def colleague_boxes(self) -> SafeString:
        """The colleagues as boxes to tick, each by name and address, drawn here rather than by the
        widget's template once per box: for a company of a few hundred people that costs far more
        than the rest of the form. Every value is escaped."""
        field = self.fields["colleagues"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        bound = self["colleagues"]
        chosen = {str(value) for value in bound.value() or []}
        people = field.queryset.values_list("id", "full_name", "email")  # type: ignore[union-attr]
        return format_html_join("", '<label class="choice"><input type="checkbox" name="{}" value="{}" id="{}_{}"{}> '
                                    "<span>{}</span></label>", (
            (bound.html_name, pk, bound.auto_id, index, mark_safe(" checked") if str(pk) in chosen else "",
             " · ".join(filter(None, (name, email)))) for index, (pk, name, email) in enumerate(people)))

    @classmethod
    def initial_for(cls, appointment: AppointmentDetails, time_zone: str) -> dict[str, Any]:
        zone = zoneinfo.ZoneInfo(time_zone)
        if appointment.all_day:
            return {"title": appointment.title, "date": appointment.start.date(), "all_day": True,
                    "end_date": (appointment.end - dt.timedelta(days=1)).date(), "location": appointment.location,
                    "notes": appointment.notes, "private": appointment.is_private, "show_as": appointment.show_as,
                    "invite": appointment.invite}
        start, end = appointment.start.astimezone(zone), appointment.end.astimezone(zone)
        return {"title": appointment.title, "date": start.date(), "start_time": start.time(),
                "end_time": end.time(), "location": appointment.location, "notes": appointment.notes,
                "private": appointment.is_private, "show_as": appointment.show_as, "invite": appointment.invite}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        zone = zoneinfo.ZoneInfo(self.time_zone)
        day: dt.date = data["date"]
        if data.get("all_day"):
            last = data.get("end_date") or day
            if last < day:
                raise forms.ValidationError("The last day can't be before the first.")
            start = dt.datetime.combine(day, dt.time(), zone)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        else:
            if data.get("start_time") is None or data.get("end_time") is None:
                raise forms.ValidationError("Enter a start and an end time, or tick All day.")
            start = dt.datetime.combine(day, data["start_time"], zone)
            end = dt.datetime.combine(day, data["end_time"], zone)
            if end <= start:
                raise forms.ValidationError("The appointment must end after it starts.")
        data["start"], data["end"] = start, end
        return data

    def to_input(self) -> AppointmentInput:
        data = self.cleaned_data
        return AppointmentInput(title=data["title"], start=data["start"], end=data["end"], time_zone=self.time_zone,
                                all_day=bool(data.get("all_day")), location=data.get("location", ""),
                                notes=data.get("notes", ""), private=bool(data.get("private")),
                                show_as=data.get("show_as") or "busy", invite=bool(data.get("invite")))
