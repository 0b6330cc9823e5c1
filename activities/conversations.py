"""Conversations: which emails belong together, and whether later ones are captured on their own.

An email joins the conversation of any email it replies to (its In-Reply-To and References,
looked up by their dedupe keys among the company's emails); otherwise it starts one. The sync
apps pass the keys (they know how a Message-ID becomes one); the rules are here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import User

from . import regarding as regarding_kinds
from .models import Activity, ActivityContact, Conversation, EmailMessage


@dataclass(frozen=True)
class Followed:
    """What a later message of a followed conversation is captured with: the conversation, the
    contacts its emails are on and the Regarding of its latest email that has one."""

    conversation_id: uuid.UUID
    started_at: dt.datetime
    contact_ids: frozenset[uuid.UUID] = frozenset()
    regarding: Mapping[str, uuid.UUID | None] = field(default_factory=dict)


def conversations_by_key(company_id: uuid.UUID, keys: Iterable[str]) -> dict[str, uuid.UUID]:
    """The conversation of each email of the company with one of these dedupe keys (one query)."""
    wanted = list({key for key in keys if key})
    if not wanted:
        return {}
    return dict(
        EmailMessage.objects.filter(company_id=company_id, dedupe_key__in=wanted, conversation__isnull=False)
        .values_list("dedupe_key", "conversation_id")
    )


def new_conversations(company_id: uuid.UUID, started: list[dt.datetime]) -> list[Conversation]:
    """Start conversations (one query), for emails that reply to nothing in Aspire."""
    return Conversation.objects.bulk_create(
        [Conversation(company_id=company_id, started_at=moment) for moment in started])


def join_conversations(company_id: uuid.UUID,
                       emails: Mapping[str, tuple[Iterable[str], dt.datetime]]) -> dict[str, uuid.UUID]:
    """The conversation of each new email (by its dedupe key): that of an email in Aspire it
    replies to (the dedupe keys of its In-Reply-To, then References), else a new one started at
    its date. Captured mail and mail sent from Aspire both join here (two queries, however many)."""
    replies = {key: list(keys) for key, (keys, _) in emails.items()}
    known = conversations_by_key(company_id, [k for keys in replies.values() for k in keys])
    joined = {key: next((known[k] for k in keys if k in known), None) for key, keys in replies.items()}
    starting = [key for key, conversation in joined.items() if conversation is None]
    started = new_conversations(company_id, [emails[key][1] for key in starting])
    return {**{k: v for k, v in joined.items() if v is not None},
            **{key: conversation.pk for key, conversation in zip(starting, started, strict=True)}}


def followed(company_id: uuid.UUID, conversation_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Followed]:
    """Of these conversations, those still followed, with what their later mail is captured with
    (three queries, however many)."""
    live = {c.pk: c for c in Conversation.objects.filter(company_id=company_id, pk__in=set(conversation_ids),
                                                           following=True)}
    if not live:
        return {}
    contacts: dict[uuid.UUID, set[uuid.UUID]] = {pk: set() for pk in live}
    for conversation_id, contact_id in ActivityContact.objects.filter(
            activity__email__conversation_id__in=list(live)).values_list("activity__email__conversation_id",
                                                                          "contact_id"):
        contacts[conversation_id].add(contact_id)
    regarding: dict[uuid.UUID, dict[str, uuid.UUID | None]] = {}
    fields = [f"{name}_id" for name in regarding_kinds.FIELDS]
    for row in (Activity.objects.filter(email__conversation_id__in=list(live))
                .exclude(**dict.fromkeys(fields))
                .order_by("occurred_at").values("email__conversation_id", *fields)):
        regarding[row.pop("email__conversation_id")] = row  # the latest wins
    return {
        pk: Followed(conversation_id=pk, started_at=c.started_at, contact_ids=frozenset(contacts[pk]),
                     regarding=regarding.get(pk, {}))
        for pk, c in live.items()
    }


@transaction.atomic
def stop_following(*, conversation: Conversation, user: User) -> Conversation:
    """Later mail of this conversation is no longer captured on its own (what is in Aspire stays)."""
    if conversation.following:
        conversation.following = False
        conversation.stopped_at = timezone.now()
        conversation.stopped_by = user
        conversation.save(update_fields=["following", "stopped_at", "stopped_by"])
    return conversation
