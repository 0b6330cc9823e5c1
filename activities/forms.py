"""The "Find any email" form: what a person typed, checked before anything is searched."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.dates import validate_supported_date

from .models import Activity


class DateRangeForm(forms.Form):
    """A range of whole days in the reader's time zone, each end optional: Find email's and the
    timelines' (``selectors.within_days`` is what it means)."""

    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            validators=[validate_supported_date])
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            validators=[validate_supported_date])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The last day can't be before the first.")
        return cleaned


class EmailSearchForm(DateRangeForm):
    q = forms.CharField(label="Words", required=False, max_length=500,
                        help_text='In the subject, the text, the sender or an attachment\'s name. "Exact phrase", '
                                  "-leave out.")
    origin = forms.ChoiceField(label="Origin", required=False)
    attachment = forms.BooleanField(label="Has an attachment", required=False)
    contact = forms.UUIDField(required=False, widget=forms.HiddenInput)
    regarding = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    # The choosers: what was typed to find a contact or a record, and the match picked, which
    # replaces the filter chosen before. The view looks each up within the user's company.
    contact_q = forms.CharField(label="Find a contact", required=False, max_length=200)
    contact_pick = forms.UUIDField(required=False)
    regarding_q = forms.CharField(label="Find an opportunity, property or work ticket", required=False,
                                  max_length=200)
    regarding_pick = forms.CharField(required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        origin = self.fields["origin"]
        assert isinstance(origin, forms.ChoiceField)
        origin.choices = [("", "Any"), *Activity.Origin.choices]
