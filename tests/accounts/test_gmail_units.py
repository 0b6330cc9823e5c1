"""Gmail is charged by method, as Google documents: the product's budget for a mailbox spends what
the sandbox (which enforces Google's per-user limit) counts for the same calls, from one table
each (the sandbox may not import the product, so it keeps its own copy)."""

from __future__ import annotations

import time
from typing import Any

from accounts import quotas
from accounts.models import User
from mailsync.capture import run_capture
from mailsync.outbox import queue_email
from mailsync.sending import drain_queue
from providers.google import quota as product_table
from sandbox.google import quota as sandbox_table
from sandbox.runner import SandboxProcess
from tests.accounts.test_quotas import small_budgets, wait_for_next_window
from tests.mailboxes import connected_mailbox, drop, mime

ADDRESS = "bob@greenleaf.example"


def sandbox_units(sandbox: SandboxProcess, since: float) -> int:
    """What the sandbox charged the mailbox for the Gmail calls it served since ``since``."""
    entries = sandbox.control("GET", f"/requests?account={ADDRESS}&since={since}")["requests"]
    return sum(sandbox_table.GMAIL_COSTS.get(entry.get("operation") or "", 0) for entry in entries)


def test_the_sandbox_and_the_product_use_the_same_documented_units() -> None:
    for operation, units in sandbox_table.GMAIL_COSTS.items():
        method = operation.removeprefix("gmail.")
        method = f"settings.{method}" if method.startswith("sendAs.") else method
        assert product_table.COSTS[method] == units, operation
    # The figures the send queue and capture are paced by, as the quota page gives them.
    assert (
        product_table.COSTS["messages.get"],
        product_table.COSTS["messages.list"],
        product_table.COSTS["history.list"],
        product_table.COSTS["messages.send"],
        product_table.COSTS["messages.modify"],
        product_table.COSTS["messages.batchModify"],
        product_table.COSTS["labels.list"],
        product_table.COSTS["watch"],
    ) == (5, 5, 2, 100, 5, 50, 1, 100)


def test_a_capture_run_is_charged_the_units_of_the_calls_it_made(
    providers_on_sandbox: SandboxProcess, bob: User, buckets: Any, settings: Any
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", ADDRESS)
    run_capture(connection_id=connection.pk, owner="labels")
    for n in range(3):
        drop(providers_on_sandbox, "google", ADDRESS, mime(f"Invoice {n}"))
    small_budgets(settings, mailbox=15_000, application=1_000_000)
    since = time.time()
    wait_for_next_window()

    run_capture(connection_id=connection.pk, owner="capture")

    charged = quotas.spent(connection=connection)["mailbox"]
    # Two lists (5 each: the page, then the label found empty), three reads (5 each) and one
    # batchModify of the three (50): 75 units, where 5 a request would have said 30.
    assert charged == sandbox_units(providers_on_sandbox, since) == 75


def test_a_send_is_charged_a_send_and_its_thread_lookup(
    providers_on_sandbox: SandboxProcess, bob: User, buckets: Any, settings: Any
) -> None:
    connection = connected_mailbox(providers_on_sandbox, bob, "google", ADDRESS)
    small_budgets(settings, mailbox=15_000, application=1_000_000)
    queue_email(author=bob, to="dana@example.com", subject="Month-end statement", body="Attached.")
    since = time.time()
    wait_for_next_window()

    assert drain_queue(connection_id=connection.pk, owner="sender").sent == 1

    assert quotas.spent(connection=connection)["mailbox"] == sandbox_units(providers_on_sandbox, since) == 100
