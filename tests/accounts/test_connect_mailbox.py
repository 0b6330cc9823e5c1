"""Connecting a mailbox from User Settings, against the provider sandbox through the real client
libraries: what each user sees on the page, and what is (and is not) saved."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.management import call_command

from accounts import grants
from accounts import mailbox as mailbox_services
from accounts.crypto import decrypt_json
from accounts.grants import fresh_grant
from accounts.models import MailboxConnection, User
from accounts.provider_registry import get_provider
from activities.models import Activity
from mailsync.capture import run_capture
from providers.errors import AuthRevoked
from sandbox.runner import SandboxProcess
from sandbox.signin import ProviderSignIn
from tests.conftest import REDIRECT_URI, client_for, mailbox_account
from tests.mailboxes import (
    back_to_aspire,
    connect,
    connected_mailbox,
    drop,
    mime,
    requests_to,
    settings_form,
    start_signin,
)

PROVIDERS = ["microsoft", "google"]


# -- connecting ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mfa", [False, True], ids=["password", "mfa"])
def test_connect_with_and_without_mfa(provider: str, mfa: bool, providers_on_sandbox: SandboxProcess,
                                      bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example", display_name="Bob Staff",
                    mfa=mfa, mfa_code="424242")
    client = client_for(bob)
    page = connect(client, providers_on_sandbox, bob, provider, "bob@greenleaf.example",
                   code="424242" if mfa else None, sync_aspire_folder=True)
    assert "Connected as Bob Staff <bob@greenleaf.example>" in page
    connection = MailboxConnection.objects.get(user=bob)
    assert connection.state == "connected"
    assert (connection.sync_email, connection.sync_calendar, connection.sync_aspire_folder) == (True, True, True)
    assert connection.provider == provider
    # The grant is stored, encrypted: no token appears in the row in plain text.
    grant = decrypt_json(connection.grant_ciphertext)
    assert grant["access_token"] not in connection.grant_ciphertext
    assert "refresh" not in connection.grant_ciphertext
    # ...nor on the page, nor in the admin.
    assert grant["access_token"] not in page
    admin_page = client_for(User.objects.get(email="alice@greenleaf.example") if User.objects.filter(
        email="alice@greenleaf.example").exists() else bob).get(
        f"/admin/accounts/mailboxconnection/{connection.pk}/change/").content.decode()
    assert grant["access_token"] not in admin_page


def test_a_wrong_code_at_the_provider_lets_the_user_try_again(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, "microsoft", "bob@greenleaf.example", mfa=True, mfa_code="111111")
    client = client_for(bob)
    page = ProviderSignIn(providers_on_sandbox, start_signin(client, bob, "microsoft", "bob@greenleaf.example"),
                          REDIRECT_URI)
    assert page.sign_in("bob@greenleaf.example") is None
    assert page.enter_code("999999") is None  # still on the code page
    callback = page.enter_code("111111")
    assert callback is not None
    assert "Connected as" in back_to_aspire(client, callback)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_at_the_sign_in_page_changes_nothing(provider: str, providers_on_sandbox: SandboxProcess,
                                                     bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    client = client_for(bob)
    page = ProviderSignIn(providers_on_sandbox, start_signin(client, bob, provider, "bob@greenleaf.example"),
                          REDIRECT_URI)
    text = back_to_aspire(client, page.cancel())
    assert {"microsoft": "The sign-in was cancelled at Microsoft 365, so nothing changed.",
            "google": "Google did not give Aspire access, so nothing changed: the sign-in was cancelled or "
                      "declined at Google."}[provider] in text
    assert not MailboxConnection.objects.exists()
    assert "No mailbox is connected" in text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signing_in_as_another_account_is_refused(provider: str, providers_on_sandbox: SandboxProcess,
                                                  bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    mailbox_account(providers_on_sandbox, provider, "robert.home@greenleaf.example")
    client = client_for(bob)
    page = connect(client, providers_on_sandbox, bob, provider, "bob@greenleaf.example",
                   sign_in_as="robert.home@greenleaf.example")
    assert ("You signed in as robert.home@greenleaf.example, but the email address entered is "
            "bob@greenleaf.example.") in page
    assert not MailboxConnection.objects.exists()
    if provider == "google":  # the unwanted grant is ended at once
        assert requests_to(providers_on_sandbox, "/revoke")


@pytest.mark.parametrize(("provider", "kind", "message"), [
    ("microsoft", "shared", "is a shared mailbox, which Aspire can't sync"),
    ("microsoft", "room", "is a room mailbox, which Aspire can't sync"),
])
def test_shared_and_room_mailboxes_are_refused(provider: str, kind: str, message: str,
                                               providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "office@greenleaf.example", kind=kind)
    page = connect(client_for(bob), providers_on_sandbox, bob, provider, "office@greenleaf.example")
    assert f"office@greenleaf.example {message}" in page
    assert not MailboxConnection.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_groups_cannot_sign_in_and_nothing_is_saved(provider: str, providers_on_sandbox: SandboxProcess,
                                                    bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "crews@greenleaf.example", kind="distribution_list")
    client = client_for(bob)
    page = ProviderSignIn(providers_on_sandbox, start_signin(client, bob, provider, "crews@greenleaf.example"),
                          REDIRECT_URI)
    callback = page.sign_in("crews@greenleaf.example")
    if provider == "microsoft":
        # Microsoft ends the sign-in and sends the reason back (AADSTS50034), which Aspire words.
        assert callback is not None
        text = back_to_aspire(client, callback)
        assert "Microsoft 365 has no user account with that address, so nothing changed. Distribution lists " \
               "and groups can't sign in" in text
        assert "cancelled" not in text
    else:
        # Google says so on its own page and sends only access_denied when the person goes back.
        assert callback is None and "Google Group" in page.text
        text = back_to_aspire(client, page.cancel())
        assert "Google Groups can't sign in." in text
    assert not MailboxConnection.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_alias_is_refused(provider: str, providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    mailbox_account(providers_on_sandbox, provider, "robert@greenleaf.example", kind="alias",
                    alias_of="bob@greenleaf.example")
    page = connect(client_for(bob), providers_on_sandbox, bob, provider, "robert@greenleaf.example")
    # Both providers name a mailbox's other addresses (Graph's proxyAddresses, Gmail's send-as list).
    assert "robert@greenleaf.example is an alias of bob@greenleaf.example" in page
    assert not MailboxConnection.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_mailbox_serves_one_user_in_any_company(provider: str, providers_on_sandbox: SandboxProcess,
                                                    alice: User, bob: User, carol: User) -> None:
    mailbox_account(providers_on_sandbox, provider, "frontdesk@greenleaf.example")
    assert "Connected as" in connect(client_for(alice), providers_on_sandbox, alice, provider,
                                     "frontdesk@greenleaf.example")
    same_company = connect(client_for(bob), providers_on_sandbox, bob, provider, "frontdesk@greenleaf.example")
    assert "frontdesk@greenleaf.example is already connected to your colleague Alice Admin." in same_company
    assert "One mailbox can serve only one Aspire user" in same_company
    other_company = connect(client_for(carol), providers_on_sandbox, carol, provider, "frontdesk@greenleaf.example")
    assert "frontdesk@greenleaf.example is already connected to another Aspire user." in other_company
    assert "Alice" not in other_company  # nothing about another company leaks
    assert MailboxConnection.objects.filter(state="connected").count() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("refusal", ["alias", "already connected", "own alias"])
def test_a_refusal_never_signs_the_mailbox_owner_out(provider: str, refusal: str,
                                                     providers_on_sandbox: SandboxProcess, alice: User,
                                                     bob: User) -> None:
    """Google's revoke ends the whole grant of a Google account for the app: refusing a sign-in
    as an account Bob has connected must leave Bob's connection syncing."""
    sandbox = providers_on_sandbox
    owner = connected_mailbox(sandbox, bob, provider, "bob@greenleaf.example")
    run_capture(connection_id=owner.pk, owner="setup")  # makes the Aspire and Processed folders
    mailbox_account(sandbox, provider, "robert@greenleaf.example", kind="alias", alias_of="bob@greenleaf.example")
    who = bob if refusal == "own alias" else alice
    address = "bob@greenleaf.example" if refusal == "already connected" else "robert@greenleaf.example"
    page = connect(client_for(who), sandbox, who, provider, address)
    if refusal == "already connected":
        assert "bob@greenleaf.example is already connected to your colleague Bob Staff" in page
    else:  # an alias signs in as the mailbox it belongs to
        assert ("robert@greenleaf.example is an alias of bob@greenleaf.example" in page
                or "You signed in as bob@greenleaf.example, but the email address entered is robert@" in page)
    assert not requests_to(sandbox, "/revoke")

    # Bob's mailbox still syncs: mail dropped into Aspire after the refusal is captured.
    drop(sandbox, provider, "bob@greenleaf.example", mime("Mulch color", to="bob@greenleaf.example"))
    run = run_capture(connection_id=owner.pk, owner="test")
    assert run is not None and run.outcome == "succeeded", run and run.error
    assert run.items_imported == 1
    owner.refresh_from_db()
    assert owner.state == "connected"
    assert MailboxConnection.objects.filter(state="connected").count() == 1


def test_a_refused_account_nobody_holds_is_still_revoked(providers_on_sandbox: SandboxProcess, bob: User,
                                                         alice: User, django_capture_on_commit_callbacks: Any) -> None:
    """The rule spares only grants a connection of ours holds: Alice's refused sign-in as Bob's
    mailbox ends the new grant when Bob has since disconnected."""
    sandbox = providers_on_sandbox
    owner = connected_mailbox(sandbox, bob, "google", "bob@greenleaf.example")
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_services.disconnect_mailbox(connection=owner)
    revokes = len(requests_to(sandbox, "/revoke"))
    assert revokes == 1
    mailbox_account(sandbox, "google", "robert@greenleaf.example", kind="alias", alias_of="bob@greenleaf.example")
    page = connect(client_for(alice), sandbox, alice, "google", "robert@greenleaf.example")
    assert "You signed in as bob@greenleaf.example" in page or "is an alias of bob@greenleaf.example" in page
    assert len(requests_to(sandbox, "/revoke")) == revokes + 1


# -- form validation -------------------------------------------------------------------------


def test_sync_needs_a_provider_and_a_valid_address(bob: User) -> None:
    client = client_for(bob)
    page = client.post("/settings/", settings_form(bob, sync_email=True, mailbox_address="not-an-address"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Choose Microsoft 365 or Google." in text
    assert "Enter a valid email address." in text
    page = client.post("/settings/", settings_form(bob, sync_calendar=True, provider="google", mailbox_address=""))
    assert "Enter the email address of your mailbox." in page.content.decode()
    assert "Exchange on-premises is not supported" in page.content.decode()
    assert not MailboxConnection.objects.exists()


def test_the_time_zone_list_offers_canonical_zones_and_keeps_a_legacy_one(bob: User) -> None:
    client = client_for(bob)
    page = client.get("/settings/").content.decode()
    assert '<optgroup label="America">' in page and '<option value="America/Chicago" selected>Chicago</option>' in page
    for legacy in ("GB-Eire", "Etc/GMT+0", "US/Central", "Asia/Calcutta"):
        assert f'value="{legacy}"' not in page
    # Someone who chose a legacy name earlier keeps it, and can save the page as it is.
    User.objects.filter(pk=bob.pk).update(time_zone="US/Central")
    page = client.get("/settings/").content.decode()
    assert '<optgroup label="Saved earlier">' in page and '<option value="US/Central" selected>' in page
    response = client.post("/settings/", settings_form(User.objects.get(pk=bob.pk)))
    assert response.status_code == 302
    assert User.objects.get(pk=bob.pk).time_zone == "US/Central"
    # ...and a name outside the list is refused with a clear error.
    page = client.post("/settings/", {**settings_form(bob), "profile-time_zone": "GB-Eire"}).content.decode()
    assert "Select a valid choice. GB-Eire is not one of the available choices." in page
    assert User.objects.get(pk=bob.pk).time_zone == "US/Central"


# -- tokens ------------------------------------------------------------------------------------


def test_refresh_before_expiry_saves_the_rotated_token(providers_on_sandbox: SandboxProcess, bob: User,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox_account(providers_on_sandbox, "microsoft", "bob@greenleaf.example")
    connect(client_for(bob), providers_on_sandbox, bob, "microsoft", "bob@greenleaf.example")
    connection = MailboxConnection.objects.get(user=bob)
    before = grants.load_grant(connection)
    assert fresh_grant(connection_id=connection.pk) == before  # an hour left: no refresh

    monkeypatch.setattr(grants, "REFRESH_LEEWAY_SECONDS", 4 * 3600)  # "about to expire"
    after = fresh_grant(connection_id=connection.pk)
    assert after.access_token != before.access_token
    connection.refresh_from_db()
    assert decrypt_json(connection.grant_ciphertext)["access_token"] == after.access_token
    # Microsoft rotates refresh tokens: the one we held before is now refused.
    with pytest.raises(AuthRevoked):
        get_provider("microsoft").refresh(before)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_revoked_grant_puts_the_connection_in_needs_sign_in(provider: str, providers_on_sandbox: SandboxProcess,
                                                               alice: User, bob: User,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    bob_client = client_for(bob)
    connect(bob_client, providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    connection = MailboxConnection.objects.get(user=bob)
    providers_on_sandbox.control("POST", "/faults", json={"kind": "invalid_grant",
                                                          "account": "bob@greenleaf.example"})
    monkeypatch.setattr(grants, "REFRESH_LEEWAY_SECONDS", 4 * 3600)
    with pytest.raises(AuthRevoked):
        fresh_grant(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.state == "needs_signin"
    assert connection.grant_ciphertext == ""

    page = bob_client.get("/settings/").content.decode()
    assert "Needs sign-in" in page
    assert "Please sign in again to keep syncing." in page
    assert ">Reconnect</button>" in page
    # The company admin sees it too: on their settings page and in the admin.
    assert "1 colleague needs to sign in again before their mail syncs: Bob Staff." in client_for(alice).get(
        "/settings/").content.decode()
    admin_list = client_for(alice).get("/admin/accounts/mailboxconnection/?state__exact=needs_signin")
    assert "bob@greenleaf.example" in admin_list.content.decode()

    # Reconnect runs the sign-in again with the same settings.
    response = bob_client.post("/settings/mailbox/reconnect/")
    page_ = ProviderSignIn(providers_on_sandbox, response["Location"], REDIRECT_URI)
    callback = page_.sign_in("bob@greenleaf.example")
    assert callback is not None
    assert "Connected as" in back_to_aspire(bob_client, callback)
    connection.refresh_from_db()
    assert connection.state == "connected" and connection.last_error == ""


def test_no_token_reaches_the_logs(providers_on_sandbox: SandboxProcess, bob: User,
                                   caplog: pytest.LogCaptureFixture) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    with caplog.at_level(logging.DEBUG):
        connect(client_for(bob), providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    grant = decrypt_json(MailboxConnection.objects.get(user=bob).grant_ciphertext)
    secrets = [grant["access_token"], grant["data"]["refresh_token"]]
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text, record


def test_rotating_the_encryption_key(providers_on_sandbox: SandboxProcess, bob: User,
                                     settings: Any) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    connect(client_for(bob), providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    old_key = settings.TOKEN_ENCRYPTION_KEYS[0]
    new_key = "bmV3LXJvdGF0ZWQta2V5LWZvci1hc3BpcmUtc3luYyE="
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_token_keys")
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key is gone and the grant still reads
    assert decrypt_json(MailboxConnection.objects.get(user=bob).grant_ciphertext)["access_token"]


# -- disconnect and resync ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unchecking_both_disconnects_and_keeps_activities(provider: str, providers_on_sandbox: SandboxProcess,
                                                          bob: User, activity: Activity,
                                                          django_capture_on_commit_callbacks: Any) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    client = client_for(bob)
    connect(client, providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/settings/", settings_form(bob, provider=provider,
                                                       mailbox_address="bob@greenleaf.example"),
                           follow=True).content.decode()
    assert "Sync is off and your mailbox is disconnected. Activities already in Aspire stay there." in page
    connection = MailboxConnection.objects.get(user=bob)
    assert connection.state == "disconnected" and connection.grant_ciphertext == ""
    assert Activity.objects.filter(pk=activity.pk).exists()
    if provider == "google":
        assert requests_to(providers_on_sandbox, "/revoke")
    else:
        # Microsoft has no per-app revocation; signing the user out of every device is not ours to do.
        assert not requests_to(providers_on_sandbox, "revokeSignInSessions")

    # Checking again and saving runs the sign-in again.
    assert start_signin(client, bob, provider, "bob@greenleaf.example").startswith(providers_on_sandbox.base_url)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_articles_resync_steps_work_with_sync_aspire_folder_still_ticked(
        provider: str, providers_on_sandbox: SandboxProcess, bob: User) -> None:
    """The article says: untick Sync Email and Sync Calendar, Save. It does not mention Sync Aspire
    Folder, which is part of Sync Email: it goes off with it, never an error."""
    connected_mailbox(providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    client = client_for(bob)
    page = client.post("/settings/", settings_form(bob, sync_aspire_folder=True, provider=provider,
                                                   mailbox_address="bob@greenleaf.example"), follow=True)
    assert "Sync is off and your mailbox is disconnected." in page.content.decode()
    connection = MailboxConnection.objects.get(user=bob)
    assert (connection.state, connection.sync_email, connection.sync_aspire_folder) == ("disconnected", False, False)
    # Tick again, choose the provider, Save: the provider's sign-in.
    assert start_signin(client, bob, provider, "bob@greenleaf.example").startswith(providers_on_sandbox.base_url)


def test_sync_aspire_folder_without_sync_email_is_off(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    page = connect(client_for(bob), providers_on_sandbox, bob, "google", "bob@greenleaf.example", sync_email=False,
                   sync_aspire_folder=True)
    assert "Connected as" in page
    connection = MailboxConnection.objects.get(user=bob)
    assert (connection.sync_email, connection.sync_calendar, connection.sync_aspire_folder) == (False, True, False)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_disconnect_button_confirms_then_disconnects(provider: str, providers_on_sandbox: SandboxProcess,
                                                         bob: User, alice: User, activity: Activity,
                                                         django_capture_on_commit_callbacks: Any) -> None:
    mailbox_account(providers_on_sandbox, provider, "bob@greenleaf.example")
    mailbox_account(providers_on_sandbox, provider, "alice@greenleaf.example")
    client = client_for(bob)
    connect(client, providers_on_sandbox, bob, provider, "bob@greenleaf.example")
    connect(client_for(alice), providers_on_sandbox, alice, provider, "alice@greenleaf.example")
    settings_page = client.get("/settings/").content.decode()
    assert 'href="/settings/mailbox/disconnect/">Disconnect</a>' in settings_page

    confirm = client.get("/settings/mailbox/disconnect/").content.decode()
    assert "Disconnect your mailbox?" in confirm
    assert "Emails and appointments already in Aspire stay there." in confirm
    assert MailboxConnection.objects.get(user=bob).state == "connected"  # asking changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/settings/mailbox/disconnect/", follow=True).content.decode()
    assert "Sync is off and your mailbox is disconnected. Activities already in Aspire stay there." in page
    assert "No mailbox is connected" in page
    connection = MailboxConnection.objects.get(user=bob)
    assert (connection.state, connection.grant_ciphertext, connection.sync_email, connection.sync_calendar) == (
        "disconnected", "", False, False)
    assert Activity.objects.filter(pk=activity.pk).exists()
    assert len(requests_to(providers_on_sandbox, "/revoke")) == (1 if provider == "google" else 0)
    # Only Bob's own mailbox: Alice's stays connected.
    assert MailboxConnection.objects.get(user=alice).state == "connected"
    # Nothing left to disconnect: back to Settings.
    again = client.get("/settings/mailbox/disconnect/")
    assert again.status_code == 302 and again["Location"] == "/settings/"


def test_unchecking_one_keeps_the_other(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    client = client_for(bob)
    connect(client, providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    response = client.post("/settings/", settings_form(bob, sync_email=True, provider="google",
                                                       mailbox_address="bob@greenleaf.example"))
    assert response.status_code == 302 and response["Location"] == "/settings/"  # no new sign-in
    connection = MailboxConnection.objects.get(user=bob)
    assert (connection.state, connection.sync_email, connection.sync_calendar) == ("connected", True, False)


def test_a_new_address_or_provider_signs_in_again(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    client = client_for(bob)
    connect(client, providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    assert start_signin(client, bob, "microsoft", "bob@greenleaf.example").startswith(
        f"{providers_on_sandbox.base_url}/organizations/")
    assert start_signin(client, bob, "google", "bob.other@greenleaf.example").startswith(
        f"{providers_on_sandbox.base_url}/o/oauth2/")
    assert MailboxConnection.objects.get(user=bob).mailbox_address == "bob@greenleaf.example"  # until it succeeds


# -- OAuth safety --------------------------------------------------------------------------------


def test_a_callback_is_single_use_and_bound_to_its_session(providers_on_sandbox: SandboxProcess, bob: User,
                                                           alice: User) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    bob_client = client_for(bob)
    page = ProviderSignIn(providers_on_sandbox, start_signin(bob_client, bob, "google", "bob@greenleaf.example"),
                          REDIRECT_URI)
    callback = page.sign_in("bob@greenleaf.example")
    assert callback is not None
    # Someone else's session presenting Bob's state is refused.
    foreign = back_to_aspire(client_for(alice), callback)
    assert "This sign-in link is unknown or was already used." in foreign
    assert not MailboxConnection.objects.exists()
    assert "Connected as" in back_to_aspire(bob_client, callback)
    # Replaying the same callback does nothing more.
    replay = back_to_aspire(bob_client, callback)
    assert "This sign-in link is unknown or was already used." in replay
    unknown = back_to_aspire(bob_client, REDIRECT_URI + "?state=made-up&code=whatever")
    assert "unknown or was already used" in unknown


def test_a_slow_sign_in_expires(providers_on_sandbox: SandboxProcess, bob: User, settings: Any) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    client = client_for(bob)
    page = ProviderSignIn(providers_on_sandbox, start_signin(client, bob, "google", "bob@greenleaf.example"),
                          REDIRECT_URI)
    callback = page.sign_in("bob@greenleaf.example")
    settings.OAUTH_SIGNIN_TTL_SECONDS = -1
    assert "This sign-in took too long and expired." in back_to_aspire(client, callback or "")
    assert not MailboxConnection.objects.exists()


def test_sync_now_makes_the_connection_due(providers_on_sandbox: SandboxProcess, bob: User) -> None:
    mailbox_account(providers_on_sandbox, "google", "bob@greenleaf.example")
    client = client_for(bob)
    connect(client, providers_on_sandbox, bob, "google", "bob@greenleaf.example")
    MailboxConnection.objects.filter(user=bob).update(next_sync_at=None)
    page = client.post("/settings/mailbox/sync-now/", follow=True).content.decode()
    assert "Sync requested." in page
    assert MailboxConnection.objects.get(user=bob).next_sync_at is not None
