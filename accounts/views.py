from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .forms import ProfileForm
from .services import update_profile


@login_required
def user_settings(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm(request.POST or None, instance=user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        update_profile(user=user, full_name=form.cleaned_data["full_name"], time_zone=form.cleaned_data["time_zone"])  # type: ignore[arg-type]
        messages.success(request, "Your settings are saved.")
        return redirect("accounts:settings")
    return render(request, "accounts/settings.html", {"form": form})
