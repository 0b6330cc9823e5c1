from __future__ import annotations

from django import forms
from django.conf import settings

from .models import User


class ProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    time_zone = forms.ChoiceField(
        choices=[(tz, tz.replace("_", " ")) for tz in settings.TIME_ZONES],
        help_text="Dates and times in Aspire are shown in this time zone.",
    )

    class Meta:
        model = User
        fields = ("full_name", "time_zone")
        labels = {"full_name": "Your name"}
