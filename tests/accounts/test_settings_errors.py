"""Bad input on the settings page gets a clear error on the page and saves nothing: every error the
forms find is shown, a crafted Shared With holding another company's user included."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.http import QueryDict
from django.test import Client

from accounts.forms import ProfileForm, SyncForm
from accounts.models import MailboxConnection, User
from tests.conftest import PASSWORD, client_for
from tests.mailboxes import settings_form


def page_text(client: Client, data: dict[str, Any]) -> str:
    response = client.post("/settings/", data)
    assert response.status_code == 200  # shown again, not saved
    return html.unescape(response.content.decode())


def test_another_companys_user_in_shared_with_is_refused_on_the_page(bob: User, carol: User, alice: User) -> None:
    data = settings_form(bob, calendar_privacy="private")
    data["sync-shared_with"] = [str(alice.pk), str(carol.pk)]
    text = page_text(client_for(bob), data)
    assert "Shared with: Share only with colleagues in your own company." in text
    assert not MailboxConnection.objects.filter(user=bob).exists()  # nothing saved
    assert carol.full_name not in text  # and the outsider's name is not shown either


BAD_VALUES = {
    "sync-calendar_privacy": "everyone",
    "sync-provider": "exchange-onprem",
    "sync-mailbox_address": "not an address",
    "sync-shared_with": "not-a-user-id",
    "profile-time_zone": "Mars/Olympus_Mons",
    "profile-full_name": "x" * 1000,
}


@pytest.mark.parametrize("field", BAD_VALUES)
def test_every_error_the_forms_find_is_on_the_page(field: str, bob: User) -> None:
    data = {**settings_form(bob), field: BAD_VALUES[field]}
    posted = QueryDict(mutable=True)  # as the view receives it
    for key, value in data.items():
        posted.setlist(key, value if isinstance(value, list) else [value])
    errors = [*SyncForm(posted, user=bob, prefix="sync").errors.values(),
              *ProfileForm(posted, instance=bob, prefix="profile").errors.values()]
    assert errors, field
    text = page_text(client_for(bob), data)
    for messages in errors:
        for message in messages:
            assert message in text, (field, message)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_refused_shared_with_stays_in_sight(live_server: Any, browser_page: Any, bob: User, carol: User) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Email address").first.fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="User settings").wait_for()
    # A crafted form: Public, and another company's user slipped into Shared With.
    page.evaluate("""carol => {
        const box = document.createElement('input');
        box.type = 'checkbox'; box.name = 'sync-shared_with'; box.value = carol; box.checked = true;
        document.getElementById('settings-form').appendChild(box);
    }""", str(carol.pk))
    page.get_by_role("button", name="Save").first.click()
    page.get_by_text("Nothing was saved").wait_for()
    error = page.locator("#shared-with .error")
    assert error.is_visible() and "your own company" in error.inner_text()
