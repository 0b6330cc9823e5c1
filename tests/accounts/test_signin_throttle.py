"""Sign-in throttling (django-axes) on both sign-in pages: a few wrong passwords lock the account,
and a few from one address lock that address, with a plain message; operators unlock in the admin."""

from __future__ import annotations

from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD, client_for

SIGN_IN_PAGES = ["/login/", "/admin/login/"]


def sign_in(page: str, email: str, password: str, address: str = "203.0.113.5") -> Any:
    client = Client()
    response = client.post(page, {"username": email, "password": password, "next": "/"}, REMOTE_ADDR=address)
    response.signed_in = "_auth_user_id" in client.session
    return response


@pytest.mark.parametrize("page", SIGN_IN_PAGES)
def test_wrong_passwords_lock_the_account_then_even_the_right_one_waits(page: str, alice: User) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        # From different addresses, and with the email typed differently: still one account.
        email = "Alice@Greenleaf.example" if n % 2 else "alice@greenleaf.example "
        assert not sign_in(page, email, "wrong", address=f"198.51.100.{n}").signed_in
    locked = sign_in(page, alice.email, PASSWORD, address="192.0.2.77")
    assert locked.status_code == 429 and not locked.signed_in
    text = locked.content.decode()
    assert "Too many sign-in attempts" in text and f"{limit} wrong passwords" in text
    assert PASSWORD not in text


def test_one_address_trying_many_accounts_is_locked_out(alice: User, bob: User) -> None:
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert not sign_in("/login/", f"guess{n}@greenleaf.example", "wrong", address="203.0.113.9").signed_in
    assert sign_in("/login/", bob.email, PASSWORD, address="203.0.113.9").status_code == 429
    # Bob himself is not locked: from his own address he signs in.
    assert sign_in("/login/", bob.email, PASSWORD, address="192.0.2.10").signed_in


def test_a_right_password_before_the_limit_starts_the_count_again(bob: User) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("/login/", bob.email, "wrong")
    assert sign_in("/login/", bob.email, PASSWORD).signed_in
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("/login/", bob.email, "wrong")
    assert sign_in("/login/", bob.email, PASSWORD).signed_in


def test_operators_unlock_in_the_admin_and_no_password_is_kept(bob: User, alice: User, operator: User) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/login/", bob.email, "hunter2-wrong")
    assert sign_in("/login/", bob.email, PASSWORD, address="192.0.2.1").status_code == 429
    stored = " ".join(f"{a.username} {a.get_data} {a.post_data}" for a in AccessAttempt.objects.all())
    assert "hunter2-wrong" not in stored and bob.email in stored
    # Company admins do not see the lockouts; operators do, and remove them.
    assert client_for(alice).get("/admin/axes/accessattempt/").status_code == 403
    ops = client_for(operator)
    listing = ops.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and bob.email in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    ops.post("/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert not AccessAttempt.objects.exists()
    assert sign_in("/login/", bob.email, PASSWORD).signed_in
