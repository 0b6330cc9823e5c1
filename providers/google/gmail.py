"""Gmail calls, one function per API method, on a client built by ``transport.api_service``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload

from providers.base import MessagePage

from . import mapping
from .transport import execute

ME = "me"  # the signed-in user
BATCH_MODIFY_LIMIT = 1000
# A message goes base64url-encoded inside a JSON body only while that body stays under 1 MB;
# above it, as a media upload of its bytes as they are. Gmail documents 35 MB for the upload and
# no figure for the JSON body: requests over 1 MB ("Request payload size exceeds the limit:
# 1048576 bytes.") are the smallest it has been seen to refuse, so larger ones never go that way.
# The size that counts is the encoded body's, a third larger than the message.
# Reference: https://developers.google.com/workspace/gmail/api/guides/uploads
JSON_BODY_MAX_BYTES = 1024 * 1024


def get_profile(gmail: Any) -> Mapping[str, Any]:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/getProfile
    result: Mapping[str, Any] = execute(gmail.users().getProfile(userId=ME))
    return result


def list_send_as(gmail: Any) -> list[Mapping[str, Any]]:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.settings.sendAs/list
    return list(execute(gmail.users().settings().sendAs().list(userId=ME)).get("sendAs", []))


def label_ids_by_name(gmail: Any) -> dict[str, str]:
    """Every label's id, by its name in lower case (Gmail refuses names that differ only in case)."""
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/list
    labels = execute(gmail.users().labels().list(userId=ME)).get("labels", [])
    return {str(label["name"]).lower(): str(label["id"]) for label in labels}


def create_label(gmail: Any, name: str) -> str:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.labels/create
    body = {"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}
    return str(execute(gmail.users().labels().create(userId=ME, body=body))["id"])


def ensure_labels(gmail: Any, names: Iterable[str]) -> dict[str, str]:
    existing = label_ids_by_name(gmail)
    found: dict[str, str] = {}
    for name in names:
        if name.lower() not in existing:
            try:
                existing[name.lower()] = create_label(gmail, name)
            except HttpError as error:
                if error.status_code != 409:
                    raise
                # Created meanwhile (another worker, or the user): it exists, which is all we need.
                existing = label_ids_by_name(gmail)
                if name.lower() not in existing:
                    raise  # a clash with a name Gmail reserves but does not list
        found[name] = existing[name.lower()]
    return found


def list_messages(gmail: Any, label_id: str, *, page_token: str | None, page_size: int) -> MessagePage:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list
    request = gmail.users().messages().list(userId=ME, labelIds=[label_id], maxResults=page_size,
                                            pageToken=page_token)
    return mapping.message_page(execute(request))


def get_raw(gmail: Any, message_id: str) -> bytes:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/get
    message = execute(gmail.users().messages().get(userId=ME, id=message_id, format="raw"))
    return mapping.decode_raw(str(message["raw"]))


def batch_modify(gmail: Any, message_ids: list[str], *, add: list[str], remove: list[str]) -> None:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/batchModify
    # Ids that no longer exist are skipped by Gmail, so a retried move is harmless.
    body = {"ids": message_ids, "addLabelIds": add, "removeLabelIds": remove}
    execute(gmail.users().messages().batchModify(userId=ME, body=body))


def send(gmail: Any, mime: bytes, *, thread_id: str = "") -> str:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/send
    # Reference: https://developers.google.com/workspace/gmail/api/guides/uploads
    # Reference: https://developers.google.com/workspace/gmail/api/guides/threads (a reply joins its
    # thread only with the threadId given, In-Reply-To and References set, and the same Subject)
    messages = gmail.users().messages()
    raw = mapping.encode_raw(mime)
    thread = {"threadId": thread_id} if thread_id else {}
    if len(raw) + len('{"raw": ""}') + len(thread_id) + 16 <= JSON_BODY_MAX_BYTES:
        request = messages.send(userId=ME, body={"raw": raw, **thread})
    else:
        upload = MediaInMemoryUpload(mime, mimetype="message/rfc822", resumable=False)
        request = messages.send(userId=ME, body=thread or None, media_body=upload)
    return str(execute(request)["id"])


def thread_of_message_id(gmail: Any, message_id: str) -> str:
    """The threadId of the mailbox's message with this Message-ID (drafts aside), or "" if none."""
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list
    # Reference: https://support.google.com/mail/answer/7190 (the rfc822msgid: search operator)
    request = gmail.users().messages().list(userId=ME, q=f"rfc822msgid:{message_id.strip('<>')} -in:drafts",
                                            includeSpamTrash=True, maxResults=1)
    found = execute(request).get("messages") or []
    return str(found[0].get("threadId", "")) if found else ""


def has_message_id(gmail: Any, message_id: str) -> bool:
    """Whether a message with this Message-ID is in the mailbox, drafts aside (a draft is not
    sent mail), Trash and Spam included."""
    return bool(thread_of_message_id(gmail, message_id))


def history_added(gmail: Any, start_history_id: str, *, page_token: str | None) -> dict[str, Any]:
    """One page of the messages added since a history id (Gmail answers 404 for one too old)."""
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.history/list
    # Reference: https://developers.google.com/workspace/gmail/api/guides/sync#partial_synchronization
    answer: dict[str, Any] = execute(gmail.users().history().list(
        userId=ME, startHistoryId=start_history_id, historyTypes="messageAdded", maxResults=500,
        pageToken=page_token))
    return answer


def search_ids(gmail: Any, query: str, *, page_token: str | None, page_size: int) -> dict[str, Any]:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/list
    # Reference: https://support.google.com/mail/answer/7190 (the after: and in: search operators)
    answer: dict[str, Any] = execute(gmail.users().messages().list(userId=ME, q=query, maxResults=page_size,
                                                                   pageToken=page_token))
    return answer


THREAD_HEADERS = ["Message-ID", "In-Reply-To", "References"]


def get_thread_headers(gmail: Any, message_id: str) -> dict[str, Any]:
    """A message's thread and the headers that place it in a conversation, without its body."""
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages/get
    answer: dict[str, Any] = execute(gmail.users().messages().get(userId=ME, id=message_id, format="metadata",
                                                                  metadataHeaders=THREAD_HEADERS))
    return answer


def watch(gmail: Any, label_ids: list[str], topic: str) -> dict[str, Any]:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/watch
    # Reference: https://developers.google.com/workspace/gmail/api/guides/push
    body = {"topicName": topic, "labelIds": label_ids, "labelFilterBehavior": "include"}
    answer: dict[str, Any] = execute(gmail.users().watch(userId=ME, body=body))
    return answer


def stop(gmail: Any) -> None:
    # Reference: https://developers.google.com/workspace/gmail/api/reference/rest/v1/users/stop
    execute(gmail.users().stop(userId=ME))
