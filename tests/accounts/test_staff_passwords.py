"""Company admins never know or set a colleague's password: they send a password-reset link, which
only the colleague's own mailbox receives. Operators keep Django's full user admin."""

from __future__ import annotations

import re
from typing import Any

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD, client_for


def reset_link() -> str:
    assert len(mail.outbox) == 1
    match = re.search(r"https?://[^/]+(/password/[^\s]+/)", mail.outbox[0].body)
    assert match, mail.outbox[0].body
    return match.group(1)


def choose_password(link: str, password: str) -> None:
    client = Client()
    form_page = client.get(link, follow=True)  # Django moves the token out of the URL first
    assert "Choose your password" in form_page.content.decode()
    done = client.post(form_page.wsgi_request.path, {"new_password1": password, "new_password2": password})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")


def test_a_company_admin_cannot_set_a_colleagues_password(alice: User, bob: User) -> None:
    client = client_for(alice)
    url = f"/admin/accounts/user/{bob.pk}/password/"
    assert client.get(url).status_code == 403
    posted = client.post(url, {"password1": "Alice-knows-this-1", "password2": "Alice-knows-this-1"})
    assert posted.status_code == 403
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)
    change_page = client.get(reverse("admin:accounts_user_change", args=[bob.pk])).content.decode()
    assert "password/" not in change_page and "pbkdf2" not in change_page


def test_a_company_admin_cannot_move_a_colleagues_sign_in_to_their_own_address(alice: User, bob: User) -> None:
    client = client_for(alice)
    response = client.post(reverse("admin:accounts_user_change", args=[bob.pk]), {
        "email": "alice-controlled@elsewhere.example", "full_name": "Bob Staff", "role": "staff",
        "time_zone": bob.time_zone, "is_active": "on"})
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.email == "bob@greenleaf.example"


def test_a_reset_link_reaches_the_colleague_who_chooses_the_password(alice: User, bob: User) -> None:
    response = client_for(alice).post(reverse("admin:accounts_user_changelist"), {
        "action": "send_password_reset_link", "_selected_action": [str(bob.pk)]})
    assert response.status_code == 302
    assert mail.outbox[0].to == [bob.email]
    choose_password(reset_link(), "Bob-chose-this-one-7")
    bob.refresh_from_db()
    assert bob.check_password("Bob-chose-this-one-7")
    # The link works once.
    assert "too old" in Client().get(reset_link(), follow=True).content.decode()


def test_a_new_colleague_chooses_their_own_password(alice: User, django_capture_on_commit_callbacks: Any) -> None:
    client = client_for(alice)
    add_page = client.get(reverse("admin:accounts_user_add")).content.decode()
    assert "password1" not in add_page and "choose their own password" in add_page
    with django_capture_on_commit_callbacks(execute=True):  # the email goes once the user is saved
        response = client.post(reverse("admin:accounts_user_add"), {
            "email": "nina@greenleaf.example", "full_name": "Nina Gray", "role": "staff",
            "password1": "Alice-picked-1234", "password2": "Alice-picked-1234"})  # ignored
    assert response.status_code == 302, response.content.decode()[:3000]
    nina = User.objects.get(email="nina@greenleaf.example")
    assert nina.company_id == alice.company_id and not nina.check_password("Alice-picked-1234")
    assert mail.outbox[0].to == ["nina@greenleaf.example"]
    choose_password(reset_link(), "Nina-chose-this-9")
    assert Client().post("/login/", {"username": "nina@greenleaf.example",
                                     "password": "Nina-chose-this-9"}).status_code == 302


def test_another_companys_admin_cannot_send_a_link_to_our_staff(carol: User, bob: User) -> None:
    client_for(carol).post(reverse("admin:accounts_user_changelist"), {
        "action": "send_password_reset_link", "_selected_action": [str(bob.pk)]})
    assert mail.outbox == []


def test_operators_keep_the_full_user_admin(operator: User, bob: User) -> None:
    url = f"/admin/accounts/user/{bob.pk}/password/"
    response = client_for(operator).post(url, {"password1": "Operator-set-1234", "password2": "Operator-set-1234",
                                                "usable_password": "true"})
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.check_password("Operator-set-1234")
