"""Gmail v1 on the sandbox through google-api-python-client, as the product's adapter uses it."""

from __future__ import annotations

import base64
import email
import email.policy
import io
import json
import queue
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, MediaIoBaseUpload

from sandbox.runner import SandboxProcess

from .google_support import check_response, connect, create_account, push_receiver, run, service

ALICE = "alice@greenleaf-landscaping.com"
CUSTOMER = "pat.customer@example.org"


@pytest.fixture
def gmail(sandbox: SandboxProcess) -> Iterator[Any]:
    create_account(sandbox, ALICE)
    client = service(sandbox, connect(sandbox, ALICE), "gmail")
    yield client
    client.close()


def mime(subject: str, *, sender: str = CUSTOMER, to: str = ALICE, body: str = "Hello",
         attachment: bytes | None = None, message_id: str | None = None, in_reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = message["References"] = in_reply_to
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="proposal.pdf")
    return bytes(message)


def put(sandbox: SandboxProcess, label: str, raw: bytes, account: str = ALICE) -> str:
    created = sandbox.control("POST", f"/accounts/google/{account}/messages", json={
        "folder": label, "raw_base64": base64.b64encode(raw).decode()})
    return str(created["id"])


def label_ids(gmail: Any) -> dict[str, str]:
    return {label["name"]: label["id"] for label in run(gmail.users().labels().list(userId="me"))["labels"]}


def make_capture_labels(gmail: Any) -> tuple[str, str]:
    aspire = run(gmail.users().labels().create(userId="me", body={"name": "Aspire"}))
    processed = run(gmail.users().labels().create(userId="me", body={"name": "Processed"}))
    return aspire["id"], processed["id"]


def list_all(gmail: Any, **params: Any) -> list[str]:
    ids: list[str] = []
    request = gmail.users().messages().list(userId="me", **params)
    while request is not None:
        page = run(request)
        ids += [m["id"] for m in page.get("messages", [])]
        request = gmail.users().messages().list_next(request, page)
    return ids


def test_system_labels_and_user_label_names_are_unique(gmail: Any) -> None:
    names = label_ids(gmail)
    assert {"INBOX", "SENT", "DRAFT", "TRASH", "SPAM", "UNREAD", "STARRED", "IMPORTANT"} <= set(names)

    aspire_id, processed_id = make_capture_labels(gmail)

    assert aspire_id.startswith("Label_") and aspire_id != processed_id
    with pytest.raises(HttpError) as raised:
        gmail.users().labels().create(userId="me", body={"name": "aspire"}).execute()
    assert raised.value.status_code == 409
    assert raised.value.error_details[0]["message"] == "Label name exists or conflicts"
    label = run(gmail.users().labels().get(userId="me", id=aspire_id))
    assert label["name"] == "Aspire" and label["messagesTotal"] == 0


def test_putting_mail_in_a_missing_label_is_a_clear_control_error(sandbox: SandboxProcess, gmail: Any) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        put(sandbox, "Aspire", mime("Nope"))
    assert raised.value.response.status_code == 404
    assert "Aspire" in raised.value.response.json()["error"]


def test_list_by_label_pages_newest_first(sandbox: SandboxProcess, gmail: Any) -> None:
    aspire_id, _ = make_capture_labels(gmail)
    put(sandbox, "INBOX", mime("Unrelated"))
    ids = [put(sandbox, "aspire", mime(f"Quote {n}")) for n in range(7)]

    first = run(gmail.users().messages().list(userId="me", labelIds=[aspire_id], maxResults=3))

    assert [m["id"] for m in first["messages"]] == ids[::-1][:3]
    assert first["nextPageToken"]
    assert list_all(gmail, labelIds=[aspire_id], maxResults=3) == ids[::-1]
    assert list_all(gmail, q="subject:quote from:pat.customer") == ids[::-1]
    assert list_all(gmail, q="label:aspire Quote 3") == [ids[3]]
    assert len(list_all(gmail, labelIds=["INBOX"])) == 1


def test_get_in_each_format(sandbox: SandboxProcess, gmail: Any) -> None:
    pdf = b"%PDF-1.4 proposal " * 100
    raw = mime("Proposal for the Henderson property", body="Please see the attached proposal.", attachment=pdf)
    message_id = put(sandbox, "INBOX", raw)
    messages = gmail.users().messages()

    full = run(messages.get(userId="me", id=message_id))
    headers = {h["name"]: h["value"] for h in full["payload"]["headers"]}
    assert headers["Subject"] == "Proposal for the Henderson property"
    assert full["labelIds"] == ["INBOX", "UNREAD"]
    assert full["snippet"].startswith("Please see the attached proposal.")
    text_part, attachment_part = full["payload"]["parts"]
    assert base64.urlsafe_b64decode(text_part["body"]["data"]).decode().strip() == "Please see the attached proposal."
    assert attachment_part["filename"] == "proposal.pdf" and attachment_part["partId"] == "1"
    attachment = run(messages.attachments().get(userId="me", messageId=message_id,
                                                id=attachment_part["body"]["attachmentId"]))
    assert base64.urlsafe_b64decode(attachment["data"]) == pdf

    raw_format = run(messages.get(userId="me", id=message_id, format="raw"))
    assert base64.urlsafe_b64decode(raw_format["raw"]) == raw and "payload" not in raw_format

    metadata = run(messages.get(userId="me", id=message_id, format="metadata", metadataHeaders=["From", "Subject"]))
    assert {h["name"] for h in metadata["payload"]["headers"]} == {"From", "Subject"}

    minimal = run(messages.get(userId="me", id=message_id, format="minimal"))
    assert set(minimal) == {"id", "threadId", "labelIds", "snippet", "sizeEstimate", "historyId", "internalDate"}

    with pytest.raises(HttpError) as raised:
        messages.get(userId="me", id="0000000000000000").execute()
    assert raised.value.status_code == 404


def test_a_25_mb_attachment_round_trips(sandbox: SandboxProcess, gmail: Any) -> None:
    big = bytes(range(256)) * (25 * 1024 * 4)
    message_id = put(sandbox, "INBOX", mime("Site survey photos", attachment=big))
    full = run(gmail.users().messages().get(userId="me", id=message_id))
    part = full["payload"]["parts"][1]
    assert part["body"]["size"] == len(big)
    attachment = run(gmail.users().messages().attachments().get(
        userId="me", messageId=message_id, id=part["body"]["attachmentId"]))
    assert base64.urlsafe_b64decode(attachment["data"]) == big


def test_modify_and_batch_modify_move_mail_from_aspire_to_processed(sandbox: SandboxProcess, gmail: Any) -> None:
    aspire_id, processed_id = make_capture_labels(gmail)
    first, *rest = [put(sandbox, "Aspire", mime(f"Captured {n}")) for n in range(4)]
    move = {"addLabelIds": [processed_id], "removeLabelIds": [aspire_id]}

    moved = run(gmail.users().messages().modify(userId="me", id=first, body=move))
    assert moved["labelIds"] == [processed_id]

    run(gmail.users().messages().batchModify(userId="me", body={"ids": rest, **move}))
    assert list_all(gmail, labelIds=[aspire_id]) == []
    assert sorted(list_all(gmail, labelIds=[processed_id])) == sorted([first, *rest])

    with pytest.raises(HttpError) as raised:
        gmail.users().messages().batchModify(userId="me", body={"ids": [first] * 1001, **move}).execute()
    assert raised.value.status_code == 400
    with pytest.raises(HttpError) as raised:
        gmail.users().messages().modify(userId="me", id=first, body={"addLabelIds": ["Label_404"]}).execute()
    assert raised.value.status_code == 400


def test_trash_hides_mail_unless_spam_and_trash_are_included(sandbox: SandboxProcess, gmail: Any) -> None:
    kept, trashed = put(sandbox, "INBOX", mime("Keep")), put(sandbox, "INBOX", mime("Junk"))
    assert "TRASH" in run(gmail.users().messages().trash(userId="me", id=trashed))["labelIds"]
    assert list_all(gmail) == [kept]
    assert list_all(gmail, includeSpamTrash=True) == [trashed, kept]
    assert list_all(gmail, q="in:trash") == [trashed]
    run(gmail.users().messages().delete(userId="me", id=trashed))
    assert list_all(gmail, includeSpamTrash=True) == [kept]


def test_send_files_under_sent_and_threads_replies(sandbox: SandboxProcess, gmail: Any) -> None:
    incoming_id = put(sandbox, "INBOX", mime("Spring cleanup", message_id="<spring@example.org>"))
    incoming = run(gmail.users().messages().get(userId="me", id=incoming_id, format="minimal"))
    thread = incoming["threadId"]
    # Seven sends in a few seconds pass Gmail's 250 quota units a second (100 a send): that limit
    # is tested on its own below.
    sandbox.control("POST", "/limits", json={"enabled": False})

    def send(raw: bytes, **extra: Any) -> Any:
        return run(gmail.users().messages().send(userId="me", body={
            "raw": base64.urlsafe_b64encode(raw).decode(), **extra}))

    reply = mime("Re: Spring cleanup", sender=ALICE, to=CUSTOMER, in_reply_to="<spring@example.org>")
    sent = send(reply, threadId=thread)
    assert sent["labelIds"] == ["SENT"]
    assert sent["threadId"] == thread
    assert list_all(gmail, labelIds=["SENT"]) == [sent["id"]]

    # Gmail joins a sent message to a thread only when all three hold: the threadId is given, the
    # message answers one of the thread's messages (In-Reply-To / References), the subject matches.
    without_thread_id = send(mime("Re: Spring cleanup", sender=ALICE, to=CUSTOMER, in_reply_to="<spring@example.org>"))
    other_subject = send(mime("Invoice 1042", sender=ALICE, to=CUSTOMER, in_reply_to="<spring@example.org>"),
                         threadId=thread)
    answering_nothing = send(mime("Re: Spring cleanup", sender=ALICE, to=CUSTOMER), threadId=thread)
    for alone in (without_thread_id, other_subject, answering_nothing):
        assert alone["threadId"] not in (thread, None)
        assert alone["threadId"] == alone["id"]  # a thread of its own
    # "Re:", "RE:", "Fwd:" do not make the subject another one.
    assert send(mime("RE: Fwd: spring cleanup", sender=ALICE, to=CUSTOMER, in_reply_to="<spring@example.org>"),
                threadId=thread)["threadId"] == thread

    # A new conversation sent as an upload, the way the client sends large messages.
    upload = MediaIoBaseUpload(io.BytesIO(mime("Invoice 1042", sender=ALICE, to=CUSTOMER, attachment=b"x" * 5000)),
                               mimetype="message/rfc822")
    fresh = run(gmail.users().messages().send(userId="me", body={}, media_body=upload))
    assert fresh["labelIds"] == ["SENT"] and fresh["threadId"] not in (incoming["threadId"], None)
    # A reply sent as an upload names its thread in the metadata part.
    upload = MediaIoBaseUpload(io.BytesIO(mime("Re: Spring cleanup", sender=ALICE, to=CUSTOMER,
                                               in_reply_to="<spring@example.org>", attachment=b"x" * 5000)),
                               mimetype="message/rfc822")
    answer = run(gmail.users().messages().send(userId="me", body={"threadId": thread}, media_body=upload))
    assert answer["threadId"] == thread
    stored = run(gmail.users().messages().get(userId="me", id=fresh["id"], format="raw"))
    assert email.message_from_bytes(base64.urlsafe_b64decode(stored["raw"]), policy=email.policy.default)[
        "Subject"] == "Invoice 1042"


def test_history_lists_changes_and_expires(sandbox: SandboxProcess, gmail: Any) -> None:
    aspire_id, processed_id = make_capture_labels(gmail)
    start = run(gmail.users().getProfile(userId="me"))["historyId"]
    message_id = put(sandbox, "Aspire", mime("Captured"))
    run(gmail.users().messages().modify(userId="me", id=message_id,
                                        body={"addLabelIds": [processed_id], "removeLabelIds": [aspire_id]}))

    history = run(gmail.users().history().list(userId="me", startHistoryId=start))

    kinds = [key for record in history["history"] for key in record if key not in ("id", "messages")]
    assert kinds == ["messagesAdded", "labelsAdded", "labelsRemoved"]
    assert int(history["historyId"]) > int(start)
    added_only = run(gmail.users().history().list(userId="me", startHistoryId=start, historyTypes=["messageAdded"],
                                                  labelId=aspire_id))
    assert [r["messagesAdded"][0]["message"]["id"] for r in added_only["history"]] == [message_id]
    paged = run(gmail.users().history().list(userId="me", startHistoryId=start, maxResults=1))
    assert len(paged["history"]) == 1 and paged["nextPageToken"]

    sandbox.control("POST", f"/accounts/google/{ALICE}/expire-sync-state")
    with pytest.raises(HttpError) as raised:
        gmail.users().history().list(userId="me", startHistoryId=history["historyId"]).execute()
    assert raised.value.status_code == 404


def test_watch_pushes_pubsub_messages_for_watched_labels(sandbox: SandboxProcess, gmail: Any) -> None:
    aspire_id, _ = make_capture_labels(gmail)
    topic = "projects/aspire-sync/topics/gmail"
    with push_receiver() as (url, received):
        sandbox.control("PUT", f"/pubsub/topics/{topic}", json={"push_endpoint": url})
        watch = run(gmail.users().watch(userId="me", body={"topicName": topic, "labelIds": [aspire_id],
                                                           "labelFilterBehavior": "include"}))
        assert int(watch["expiration"]) > int(watch["historyId"])

        put(sandbox, "INBOX", mime("Not watched"))
        put(sandbox, "Aspire", mime("Watched"))

        delivery = received.get(timeout=10)
        push = json.loads(delivery.body)
        assert delivery.path == "/hooks/google"
        assert push["subscription"].startswith("projects/sandbox/subscriptions/")
        data = json.loads(base64.b64decode(push["message"]["data"]))
        assert data["emailAddress"] == ALICE
        assert data["historyId"] > int(watch["historyId"])
        assert push["message"]["messageId"] and push["message"]["publishTime"]
        assert received.empty()

        # A burst of changes is announced in fewer pushes than changes, the last with the latest history id.
        ids = [put(sandbox, "Aspire", mime(f"Burst {n}")) for n in range(3)]
        run(gmail.users().messages().batchModify(userId="me", body={"ids": ids, "removeLabelIds": [aspire_id]}))
        latest = int(run(gmail.users().getProfile(userId="me"))["historyId"])
        burst = [json.loads(base64.b64decode(json.loads(received.get(timeout=10).body)["message"]["data"]))]
        while burst[-1]["historyId"] != latest:
            burst.append(json.loads(base64.b64decode(json.loads(received.get(timeout=10).body)["message"]["data"])))
        assert len(burst) < 6

        run(gmail.users().stop(userId="me"))
        put(sandbox, "Aspire", mime("After stop"))
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)


def test_per_user_rate_limit_answers_429_until_limits_are_off(sandbox: SandboxProcess, gmail: Any) -> None:
    move = {"ids": ["0000000000000000"], "addLabelIds": ["STARRED"]}
    with pytest.raises(HttpError) as raised:
        for _ in range(10):  # 50 units each against 250 per second
            gmail.users().messages().batchModify(userId="me", body=move).execute()
    assert raised.value.status_code == 429
    assert raised.value.resp["retry-after"] == "1"
    assert raised.value.error_details[0]["reason"] == "userRateLimitExceeded"

    sandbox.control("POST", "/limits", json={"enabled": False})
    for _ in range(10):
        run(gmail.users().messages().batchModify(userId="me", body=move))


def test_batch_request_of_message_gets(sandbox: SandboxProcess, gmail: Any) -> None:
    ids = [put(sandbox, "INBOX", mime(f"Batch {n}")) for n in range(5)]
    results: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = exception or response

    batch = BatchHttpRequest(callback=collect, batch_uri=f"{sandbox.base_url}/batch/gmail/v1")
    for message_id in [*ids, "0000000000000000"]:
        batch.add(gmail.users().messages().get(userId="me", id=message_id, format="metadata"), request_id=message_id)
    batch.execute()

    for message_id in ids:
        check_response("gmail.users.messages.get", results[message_id])
        assert results[message_id]["id"] == message_id
    missing = results["0000000000000000"]
    assert isinstance(missing, HttpError) and missing.status_code == 404
    counters = sandbox.control("GET", "/counters")["counters"][ALICE]
    assert counters["gmail.messages.get"] == 6 and counters["batch"] == 1
