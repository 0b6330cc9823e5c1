"""The demo's outbox (/dev/mail/) shows when each message was sent on the reader's own clock, like
every other page: Django writes a message's Date in UTC as ``-0000``, which must not read as local."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.core.mail import send_mail
from django.utils import timezone

from accounts.models import User
from tests.conftest import client_for


def test_the_demo_outbox_shows_the_time_sent_on_the_readers_clock(bob: User, settings: Any, tmp_path: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    settings.DEBUG = True
    bob.time_zone = "America/Chicago"
    bob.save(update_fields=["time_zone"])
    before = timezone.now()
    send_mail("Your mailbox", "Please reconnect.", "aspire@greenleaf.example", [bob.email])

    response = client_for(bob).get("/dev/mail/")
    (sent,) = response.context["sent"]
    assert sent.sent_at is not None and sent.sent_at.tzinfo is not None
    assert abs(sent.sent_at - before).total_seconds() < 60
    shown = timezone.localtime(sent.sent_at, zoneinfo.ZoneInfo("America/Chicago"))
    assert f"{shown:%a, %b} {shown.day}, {shown:%-I:%M %p}" in response.content.decode()
