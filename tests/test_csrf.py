"""Every form a signed-in person posts is protected by Django's CSRF check: a post from another
site (no token) is refused with 403. Only the provider webhooks are exempt, and they are
authenticated per request instead (tests/accounts/test_push.py)."""

from __future__ import annotations

from django.test import Client
from django.urls import get_resolver

from accounts.models import User
from crm.models import Contact

EXEMPT = {"/hooks/microsoft/mail/", "/hooks/microsoft/calendar/", "/hooks/microsoft/lifecycle/",
          "/hooks/google/calendar/", "/hooks/google/pubsub/"}


def test_a_post_without_a_csrf_token_is_refused(bob: User, contact: Contact) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    posts = ["/settings/", "/settings/mailbox/sync-now/", "/settings/mailbox/reconnect/", "/logout/",
             f"/mail/compose/contact/{contact.pk}/", "/calendar/appointments/new/", "/admin/crm/contact/add/",
             "/login/"]
    for url in posts:
        assert client.post(url, {"x": "1"}).status_code == 403, url


def test_only_the_provider_webhooks_are_csrf_exempt() -> None:
    exempt = set()

    def walk(patterns: list, prefix: str = "") -> None:  # type: ignore[type-arg]
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif getattr(pattern.callback, "csrf_exempt", False):
                exempt.add("/" + route)

    walk(get_resolver().url_patterns)
    assert exempt == EXEMPT
