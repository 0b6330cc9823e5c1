"""Graph JSON to the adapter's value types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..base import MailboxIdentity, MailboxKind, MailChange, MessagePage, MessageRef, message_ids

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailboxsettings (userPurpose values)
# "linked" is a mailbox whose owner signs in from another forest; like "others", Aspire cannot tell
# what it is, so it is not treated as a user's own mailbox.
USER_PURPOSES = {
    "user": MailboxKind.USER,
    "shared": MailboxKind.SHARED,
    "room": MailboxKind.ROOM,
    "equipment": MailboxKind.EQUIPMENT,
}


def mailbox_kind(user_purpose: object) -> MailboxKind:
    return USER_PURPOSES.get(str(user_purpose or "").lower(), MailboxKind.OTHER)


def smtp_aliases(proxy_addresses: Iterable[str], primary: str) -> tuple[str, ...]:
    """The mailbox's other SMTP addresses. In ``proxyAddresses`` the primary is ``SMTP:``; secondary
    ones are ``smtp:``; other types (``X500:``, ``SIP:``) are not mail addresses."""
    # Reference: https://learn.microsoft.com/en-us/graph/api/resources/user (proxyAddresses)
    aliases: dict[str, None] = {}
    for entry in proxy_addresses:
        kind, _, address = str(entry).partition(":")
        if kind.lower() == "smtp" and address and address.lower() != primary.lower():
            aliases[address.lower()] = None
    return tuple(aliases)


def identity_from(me: Mapping[str, Any], mailbox_settings: Mapping[str, Any]) -> MailboxIdentity:
    """Who signed in. An alias signs in as the mailbox it belongs to, so ``address`` is the primary
    address, which may differ from the one the user typed: the caller compares."""
    address = str(me.get("mail") or me.get("userPrincipalName") or "")
    return MailboxIdentity(
        address=address,
        display_name=str(me.get("displayName") or ""),
        kind=mailbox_kind(mailbox_settings.get("userPurpose")),
        provider_account_id=str(me["id"]),
        aliases=smtp_aliases(me.get("proxyAddresses") or (), address),
    )


def message_page(body: Mapping[str, Any]) -> MessagePage:
    return MessagePage(
        messages=tuple(
            MessageRef(id=str(item["id"]), internet_message_id=str(item.get("internetMessageId") or ""))
            for item in body.get("value", [])
        ),
        next_page_token=body.get("@odata.nextLink"),
    )


def mail_change(item: Mapping[str, Any]) -> MailChange:
    """A delta item: its thread (conversationId) and the headers that place it in a conversation."""
    headers = {str(h.get("name", "")).lower(): str(h.get("value", ""))
               for h in item.get("internetMessageHeaders") or () if isinstance(h, Mapping)}
    return MailChange(
        id=str(item["id"]), thread_id=str(item.get("conversationId") or ""),
        internet_message_id=str(item.get("internetMessageId") or headers.get("message-id", "")),
        in_reply_to=next(iter(message_ids(headers.get("in-reply-to", ""))), ""),
        references=message_ids(headers.get("references", "")),
    )


def folder_ids_by_name(folders: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Folder ids by case-folded display name, as Outlook refuses two siblings differing only in case."""
    return {str(folder.get("displayName", "")).casefold(): str(folder["id"]) for folder in folders}
