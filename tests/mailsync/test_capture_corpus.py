"""Real-world and broken mail, every file of the corpus through capture on both providers.

Each message in tests/mailsync/mail/ is either an email Activity, with what a person can read of
it, or refused with a note the user sees on the run; never lost, never an error.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pytest

from accounts.grants import fresh_grant
from accounts.models import MailboxConnection, User
from accounts.provider_registry import get_provider
from activities.models import Activity
from mailsync.capture import run_capture
from mailsync.models import EmailSource
from sandbox.runner import SandboxProcess
from tests.conftest import client_for
from tests.mailboxes import connected_mailbox

MAIL = Path(__file__).parent / "mail"
CORPUS = sorted(MAIL.glob("*.eml"))
# The files nobody can read as an email; each is refused with a note, and stays in Aspire.
REFUSED = {"nesting-bomb-1000-levels.eml": "too many nested parts"}
# What a person reads of some of them: (subject, sender, words of the body).
READ_AS = {
    "8bit-inside-encoded-word.eml": ("Grüße aus Köln", "js@example.de", "Schöne Grüße aus Köln"),
    "8bit-latin1-subject-and-to.eml": ("Rückfrage zum Angebot für Gärten", "dana@example.com", "Bitte um Rückruf."),
    "addresses-without-domain.eml": ("Statement for March", "", "Your statement is ready."),
    "boundary-declared-differs-from-used.eml": ("Boundary mismatch", "dana@example.com", "start on Monday"),
    "cr-only-line-ends.eml": ("Old Mac mail", "dana@example.com", "Line one.\nLine two."),
    "header-block-after-junk-line.eml": ("Junk before headers", "dana@example.com", "The body."),
    "header-block-leading-blank-line.eml": ("Blank line first", "dana@example.com", "Body after a blank first line."),
    "header-block-mbox-from-line.eml": ("Quoted mbox line", "dana@example.com", "Body."),
    "header-block-no-blank-line.eml": ("No separator", "dana@example.com", "the body starts right away"),
    "uuencode-in-plain-body.eml": ("Site plan (uuencoded)", "dana@example.com", "Plan attached the old way."),
}


@pytest.fixture(params=["microsoft", "google"])
def mailbox(request: pytest.FixtureRequest, providers_on_sandbox: SandboxProcess, bob: User) -> MailboxConnection:
    connection = connected_mailbox(providers_on_sandbox, bob, request.param, "bob@greenleaf.example")
    run_capture(connection_id=connection.pk, owner="setup")
    return connection


def drop_bytes(sandbox: SandboxProcess, connection: MailboxConnection, raw: bytes) -> list[str]:
    """The ids the message goes by (Graph has two: its id and its immutable id)."""
    answer = sandbox.control("POST", f"/accounts/{connection.provider}/{connection.mailbox_address}/messages",
                             json={"folder": "Aspire", "raw_base64": base64.b64encode(raw).decode()})
    return [str(answer[key]) for key in ("id", "immutable_id") if key in answer]


def test_every_file_is_an_activity_or_refused_with_a_note(mailbox: MailboxConnection,
                                                          providers_on_sandbox: SandboxProcess) -> None:
    assert len(CORPUS) >= 30
    dropped = {message_id: path.name for path in CORPUS
               for message_id in drop_bytes(providers_on_sandbox, mailbox, path.read_bytes())}

    run = run_capture(connection_id=mailbox.pk, owner="test")

    assert run is not None and run.outcome == "partial", run.error if run else None
    captured = dict(EmailSource.objects.filter(connection=mailbox).values_list("provider_message_id", "activity_id"))
    names = {dropped[message_id] for message_id in captured}
    assert names == {path.name for path in CORPUS} - set(REFUSED)
    # (A refused message is met again when the run lists the folder after moving the first page.)
    assert run.items_failed >= len(REFUSED)
    for note in REFUSED.values():
        assert note in run.error and "it stays in your Aspire folder" in run.error  # what the user reads
    # One Activity per file: none of them is the same email as another.
    assert Activity.objects.filter(pk__in=captured.values()).count() == len(names)
    by_name = {dropped[message_id]: activity_id for message_id, activity_id in captured.items()}
    for name, (subject, sender, words) in READ_AS.items():
        activity = Activity.objects.select_related("email").get(pk=by_name[name])
        assert (activity.subject, activity.email.from_address) == (subject, sender), name
        assert words in activity.email.text_body, name
    # Recipients without a domain are shown as the sender wrote them.
    statement = Activity.objects.get(pk=by_name["addresses-without-domain.eml"])
    page = html.unescape(client_for(mailbox.user).get(f"/activities/{statement.pk}/").content.decode())
    for written in ("Billing Department", "John Smith", "Ann <ann>", "undisclosed-recipients:;", "sam"):
        assert written in page, written
    box = providers_on_sandbox.control("GET", f"/accounts/{mailbox.provider}/{mailbox.mailbox_address}/mailbox")
    folders = {folder["name"]: {m["id"] for m in folder["messages"]} for folder in box["folders"]}
    assert {dropped[m] for m in folders["Aspire"]} == set(REFUSED)


def test_both_emulators_serve_every_file_byte_for_byte(mailbox: MailboxConnection,
                                                       providers_on_sandbox: SandboxProcess) -> None:
    """Raw 8-bit headers, CR-only line ends, NUL bytes and odd charsets come back as they went in,
    through the product's own adapter (Graph's $value, Gmail's format=raw)."""
    provider = get_provider(mailbox.provider)
    grant = fresh_grant(connection_id=mailbox.pk)
    for path in CORPUS:
        message_id = drop_bytes(providers_on_sandbox, mailbox, path.read_bytes())[0]
        assert provider.fetch_mime(grant, message_id) == path.read_bytes(), path.name
