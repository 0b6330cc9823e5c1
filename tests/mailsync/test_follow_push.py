"""Following's push follows the setting: turning following off (the user's choice, or the company's
default for staff who have not chosen) stops the Inbox and Sent push at the provider at once, Graph's
subscriptions deleted and Gmail's watch back on the Aspire label alone; turning it on makes them
again. The sandbox is asked what still calls Aspire."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Company, MailboxConnection, PushChannel, User
from mailsync.capture import run_capture
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox, settings_form
from tests.mailsync.test_push import push_settings  # noqa: F401 (a fixture)
from tests.workers import real_worker

BOB = "bob@greenleaf.example"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("push_settings")]


def wait_for(condition: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def watched_at_provider(sandbox: SandboxProcess, provider: str) -> set[str]:
    """What the mailbox's push covers at the provider: Graph's live subscriptions by folder,
    Gmail's one watch by label (the Aspire label shows as "aspire")."""
    if provider == "microsoft":
        listed = sandbox.control("GET", f"/microsoft/{BOB}/subscriptions")["subscriptions"]
        folders = set()
        for subscription in listed:
            resource = subscription["resource"].lower()
            folders.add(next((name for name in ("inbox", "sentitems") if f"('{name}')" in resource), "aspire"))
        return folders
    watch = sandbox.control("GET", f"/google/{BOB}/watch")["watch"]
    if watch is None:
        return set()
    return {label if label in ("INBOX", "SENT") else "aspire" for label in watch["labelIds"]}


FOLLOWING = {"microsoft": {"aspire", "inbox", "sentitems"}, "google": {"aspire", "INBOX", "SENT"}}


def save_following(user: User, provider: str, choice: str) -> None:
    response = client_for(user).post("/settings/", settings_form(
        user, sync_email=True, sync_calendar=True, sync_aspire_folder=True, provider=provider, mailbox_address=BOB,
        follow_conversations=choice))
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_turning_following_off_stops_the_inbox_and_sent_push_and_on_makes_it(
        provider: str, push_settings: SandboxProcess, bob: User) -> None:  # noqa: F811
    sandbox = push_settings
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    bob.follow_conversations = True
    bob.save(update_fields=["follow_conversations"])
    run_capture(connection_id=connection.pk, owner="setup")
    assert watched_at_provider(sandbox, provider) == FOLLOWING[provider]

    with real_worker(queues="default", hostname="follow-push-worker@%h"):
        save_following(bob, provider, "off")
        wait_for(lambda: watched_at_provider(sandbox, provider) == {"aspire"})
        assert set(PushChannel.objects.filter(connection=connection).values_list("purpose", flat=True)) <= {
            "mail", "calendar"}

        save_following(bob, provider, "on")
        wait_for(lambda: watched_at_provider(sandbox, provider) == FOLLOWING[provider])

    # The next run finds nothing to change: no channel made twice.
    run_capture(connection_id=connection.pk, owner="after")
    assert watched_at_provider(sandbox, provider) == FOLLOWING[provider]
    if provider == "microsoft":
        assert len(sandbox.control("GET", f"/microsoft/{BOB}/subscriptions")["subscriptions"]) == 3


def test_the_company_default_turned_off_stops_the_push_of_staff_who_had_not_chosen(
        push_settings: SandboxProcess, alice: User, bob: User, greenleaf: Company) -> None:  # noqa: F811
    sandbox = push_settings
    greenleaf.follow_conversations_default = True
    greenleaf.save(update_fields=["follow_conversations_default"])
    connection = connected_mailbox(sandbox, bob, "microsoft", BOB)
    run_capture(connection_id=connection.pk, owner="setup")
    assert watched_at_provider(sandbox, "microsoft") == FOLLOWING["microsoft"]

    def company_default(on: bool) -> None:
        form: dict[str, Any] = {"name": greenleaf.name, "time_zone": greenleaf.time_zone}
        if on:
            form["follow_conversations_default"] = "on"
        response = client_for(alice).post(f"/admin/accounts/company/{greenleaf.pk}/change/", form)
        assert response.status_code == 302, response.content.decode()[:3000]

    with real_worker(queues="default", hostname="follow-default-worker@%h"):
        company_default(False)
        wait_for(lambda: watched_at_provider(sandbox, "microsoft") == {"aspire"})
        company_default(True)
        wait_for(lambda: watched_at_provider(sandbox, "microsoft") == FOLLOWING["microsoft"])
    greenleaf.refresh_from_db()
    assert greenleaf.follow_conversations_default
    assert MailboxConnection.objects.get(pk=connection.pk).is_connected


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_following_without_the_aspire_folder_watches_only_the_inbox_and_sent(
    provider: str, push_settings: SandboxProcess, bob: User  # noqa: F811
) -> None:
    sandbox = push_settings
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    response = client_for(bob).post("/settings/", settings_form(
        bob, sync_email=True, sync_calendar=True, provider=provider, mailbox_address=BOB, follow_conversations="on"))
    assert response.status_code == 302
    run_capture(connection_id=connection.pk, owner="setup")
    assert watched_at_provider(sandbox, provider) == FOLLOWING[provider] - {"aspire"}

    with real_worker(queues="default", hostname="follow-alone-worker@%h"):
        response = client_for(bob).post("/settings/", settings_form(
            bob, sync_email=True, sync_calendar=True, provider=provider, mailbox_address=BOB,
            follow_conversations="off"))
        assert response.status_code == 302
        wait_for(lambda: watched_at_provider(sandbox, provider) == set())


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_turning_the_aspire_folder_off_stops_its_push(provider: str, push_settings: SandboxProcess,  # noqa: F811
                                                      bob: User) -> None:
    sandbox = push_settings
    connection = connected_mailbox(sandbox, bob, provider, BOB)
    run_capture(connection_id=connection.pk, owner="setup")
    assert watched_at_provider(sandbox, provider) == {"aspire"}

    with real_worker(queues="default", hostname="aspire-off-worker@%h"):
        response = client_for(bob).post("/settings/", settings_form(
            bob, sync_email=True, sync_calendar=True, provider=provider, mailbox_address=BOB))
        assert response.status_code == 302
        wait_for(lambda: watched_at_provider(sandbox, provider) == set())
    assert not PushChannel.objects.filter(connection=connection, purpose="mail").exists()
