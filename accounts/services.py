"""Writes to companies and users."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Iterator

from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from .models import Company, MailboxConnection, User
from .push import mail_push_changed
from .signature import clean_signature


@transaction.atomic
def update_profile(*, user: User, full_name: str, time_zone: str, email_signature: str | None = None) -> User:
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    fields = ["full_name", "time_zone"]
    if email_signature is not None:
        user.email_signature = clean_signature(email_signature)
        fields.append("email_signature")
    user.full_clean(exclude=["password"])
    user.save(update_fields=fields)
    return user


@transaction.atomic
def set_working_hours(*, user: User, days: Iterable[int], start: dt.time, end: dt.time) -> User:
    """The user's working week, on their own clock: at least one day, and a day that ends after it
    starts (refused with a ValidationError naming the field, nothing saved)."""
    previous = user.work_days, user.work_start, user.work_end
    user.work_days, user.work_start, user.work_end = sorted({int(day) for day in days}), start, end
    try:
        user.full_clean(exclude=["password"])
    except ValidationError:
        user.work_days, user.work_start, user.work_end = previous  # the user as saved, not as refused
        raise
    user.save(update_fields=["work_days", "work_start", "work_end"])
    return user


def set_follow_conversations(*, user: User, follow: bool | None) -> User:
    """The user's own choice for following conversations; None goes back to the company's default.
    When that turns following on or off, the mailbox's Inbox and Sent push follows at once."""
    was_following = user.follows_conversations
    user.follow_conversations = follow
    user.save(update_fields=["follow_conversations"])
    if user.follows_conversations != was_following:
        mail_push_changed(connections=MailboxConnection.objects.filter(user=user))
    return user


@transaction.atomic
def set_company_follow_default(*, company: Company, follow: bool) -> Company:
    """The company's default for following conversations; the push of the staff who have not
    chosen for themselves follows at once."""
    changed = company.follow_conversations_default != follow
    company.follow_conversations_default = follow
    company.save(update_fields=["follow_conversations_default"])
    if changed:
        mail_push_changed(connections=MailboxConnection.objects.filter(
            company=company, user__follow_conversations__isnull=True))
    return company


class _ResetLinkForm(PasswordResetForm):
    """Django's password-reset mail, for one known user (chosen in the admin, within the admin's
    own company) rather than whoever has the address typed in."""

    def __init__(self, user: User) -> None:
        super().__init__(data={"email": user.email})
        self.user = user

    def get_users(self, email: str) -> Iterator[User]:
        if self.user.is_active:
            yield self.user


def send_password_reset(*, user: User, request: HttpRequest) -> None:
    """Email the user a link to choose their own password (Django's password reset): how a company
    admin helps a colleague sign in, without ever knowing or setting the password."""
    form = _ResetLinkForm(user)
    if form.is_valid():
        form.save(request=request, use_https=request.is_secure(),
                  subject_template_name="registration/password_reset_subject.txt",
                  email_template_name="registration/password_reset_email.txt")


@transaction.atomic
def invite_staff(*, user: User, request: HttpRequest) -> None:
    """A new staff member made by a company admin: a password nobody knows, and a link by email to
    choose one."""
    user.set_password(secrets.token_urlsafe(32))
    user.save(update_fields=["password"])
    transaction.on_commit(lambda: send_password_reset(user=user, request=request))
