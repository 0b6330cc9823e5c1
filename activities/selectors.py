"""Reads of activities. Timelines go through here so later rules (calendar privacy) apply everywhere."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice, zip_longest
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import Exists, F, Model, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Substr
from django.utils.text import Truncator

from accounts.search import number_in, text_search, without_nul
from accounts.tenancy import get_for_user, scoped
from crm.models import Contact, Opportunity, Property, WorkTicket

from .email_search import recent_first, search_session, text_condition
from .models import Activity, ActivityContact, Conversation, EmailAttachment, EmailMessage
from .people import person
from .quoting import split_reply
from .regarding import Regarding, kind_of, record_for_user, value_of

M = TypeVar("M", bound=Model)

# What an activity's card on a timeline shows (templates/includes/timeline.html), and no more:
# not the full body, which can be long, and not the email behind it.
CARD_FIELDS = (
    "id", "kind", "origin", "occurred_at", "subject", "owner__full_name", "owner__email",
    "regarding_opportunity__name", "regarding_property__name", "regarding_work_ticket__number",
    # Which conversation an email is of: the emails of one conversation on a page are one entry.
    "email__conversation_id",
)
SUMMARY_LENGTH = 220


def _timeline(queryset: QuerySet[Activity]) -> QuerySet[Activity]:
    return (
        queryset.select_related("owner", "regarding_opportunity", "regarding_property", "regarding_work_ticket",
                                "email")
        .only(*CARD_FIELDS)
        # One character more than the card shows, so it still knows when to add an ellipsis.
        .annotate(summary=Substr("body", 1, SUMMARY_LENGTH + 1))
        .prefetch_related(Prefetch("contacts", queryset=Contact.objects.only(
            "id", "first_name", "last_name", "company_name")))
    )


@dataclass(frozen=True)
class TimelineKey:
    """Where a page of a timeline starts: an activity's time and id (newest first, ties by id)."""

    occurred_at: dt.datetime
    id: uuid.UUID

    def __str__(self) -> str:
        micros = (self.occurred_at - EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}.{self.id.hex}"

    @classmethod
    def parse(cls, value: str | None) -> TimelineKey | None:
        """A key from a page link; anything else (a mangled link) is no key: the page opens at its start."""
        micros, _, hex_id = (value or "").partition(".")
        try:
            return cls(EPOCH + dt.timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id))
        except (ValueError, OverflowError):
            return None

    @classmethod
    def of(cls, activity: Activity) -> TimelineKey:
        return cls(activity.occurred_at, activity.pk)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Timeline:
    """A record's activities, newest first. ``time`` and ``id`` name the fields the order is kept
    in, which for a contact are on its links, so one index serves the page whatever its depth."""

    condition: Q
    company_id: uuid.UUID
    count: Callable[[], int]
    # The order's keys alone, newest first, read from the index without the activities.
    keys: QuerySet[Any]
    time: str = "occurred_at"
    id: str = "id"

    def key_at(self, offset: int) -> TimelineKey | None:
        found = self.keys[offset: offset + 1]
        return TimelineKey(*found[0]) if found else None

    def newest_first(self, *, older_than: TimelineKey | None = None) -> QuerySet[Activity]:
        condition = self.condition
        if older_than is not None:
            at, pk = older_than.occurred_at, older_than.id
            # The first bound alone lets the index start at the key; the second settles ties.
            condition &= Q(**{f"{self.time}__lte": at}) & (
                Q(**{f"{self.time}__lt": at}) | Q(**{self.time: at, f"{self.id}__lt": pk}))
        return self._read(condition).order_by(F(self.time).desc(), F(self.id).desc())

    def oldest_first(self, *, newer_than: TimelineKey) -> QuerySet[Activity]:
        at, pk = newer_than.occurred_at, newer_than.id
        condition = self.condition & Q(**{f"{self.time}__gte": at}) & (
            Q(**{f"{self.time}__gt": at}) | Q(**{self.time: at, f"{self.id}__gt": pk}))
        return self._read(condition).order_by(F(self.time).asc(), F(self.id).asc())

    def newest(self, *, older_than: TimelineKey | None, limit: int) -> list[Activity]:
        """At most ``limit`` activities older than the key (from the newest without one)."""
        return list(self.newest_first(older_than=older_than)[:limit])

    def oldest(self, *, newer_than: TimelineKey, limit: int) -> list[Activity]:
        """At most ``limit`` activities newer than the key, oldest first."""
        return list(self.oldest_first(newer_than=newer_than)[:limit])

    def _read(self, condition: Q) -> QuerySet[Activity]:
        # One filter() call: the link's conditions and the key's must share one join.
        return _timeline(Activity.objects.filter(condition, company_id=self.company_id))


def day_bounds(*, since: dt.date | None, until: dt.date | None, time_zone: dt.tzinfo
               ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first instant of the first day and the first instant after the last, whole days in the
    reader's time zone; either end may be open. Find email and the timelines both mean this."""
    start = dt.datetime.combine(since, dt.time(), time_zone) if since is not None else None
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), time_zone) if until is not None else None
    return start, end


def within_days(field: str, *, since: dt.date | None, until: dt.date | None, time_zone: dt.tzinfo) -> Q:
    """``field`` (a time) within the days ``day_bounds`` gives."""
    start, end = day_bounds(since=since, until=until, time_zone=time_zone)
    condition = Q()
    if start is not None:
        condition &= Q(**{f"{field}__gte": start})
    if end is not None:
        condition &= Q(**{f"{field}__lt": end})
    return condition


@dataclass(frozen=True)
class TimelineFilters:
    """What a timeline can be narrowed to: one kind (email, appointment, note), one origin, and a
    range of days (``forms.DateRangeForm``, as Find email's) in ``time_zone``."""

    kind: str = ""
    origin: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    time_zone: dt.tzinfo = dt.UTC

    @classmethod
    def parse(cls, kind: str | None, origin: str | None, *, since: dt.date | None = None,
              until: dt.date | None = None, time_zone: dt.tzinfo = dt.UTC) -> TimelineFilters:
        """From a page's query; a value that is not a kind or an origin is no filter (the days
        come checked by the form)."""
        return cls(kind=kind if kind in Activity.Kind.values else "",
                   origin=origin if origin in Activity.Origin.values else "",
                   since=since, until=until, time_zone=time_zone)

    def q(self, prefix: str = "") -> Q:
        condition = Q()
        if self.kind:
            condition &= Q(**{f"{prefix}kind": self.kind})
        if self.origin:
            condition &= Q(**{f"{prefix}origin": self.origin})
        return condition & within_days(f"{prefix}occurred_at", since=self.since, until=self.until,
                                       time_zone=self.time_zone)

    def query_string(self) -> str:
        return urlencode({key: value for key, value in (
            ("kind", self.kind), ("origin", self.origin), ("since", self.since.isoformat() if self.since else ""),
            ("until", self.until.isoformat() if self.until else "")) if value})


NO_FILTERS = TimelineFilters()


def timeline_for_contact(contact: Contact, only: TimelineFilters = NO_FILTERS) -> Timeline:
    # Links never cross companies (activities.signals): the contact's links are its activities.
    links = ActivityContact.objects.filter(only.q("activity__"), contact=contact)
    return Timeline(
        condition=Q(contact_links__contact=contact) & only.q(),
        company_id=contact.company_id,
        count=links.count,
        keys=links.order_by("-occurred_at", "-activity_id").values_list("occurred_at", "activity_id"),
        time="contact_links__occurred_at",
        id="contact_links__activity_id",
    )


def timeline_for_record(record: Opportunity | Property | WorkTicket, only: TimelineFilters = NO_FILTERS) -> Timeline:
    """A record's activities. A property's page also shows what concerns its opportunities and
    work tickets, as office staff expect to see everything about a site in one place."""
    if isinstance(record, Property):
        # Lists of ids, not joins: each of the three foreign-key indexes finds its rows and the
        # database combines them, instead of reading every activity of the company.
        opportunities = list(Opportunity.objects.filter(property=record).values_list("pk", flat=True))
        tickets = list(WorkTicket.objects.filter(property=record).values_list("pk", flat=True))
        condition = Q(regarding_property=record)
        if opportunities:
            condition |= Q(regarding_opportunity__in=opportunities)
        if tickets:
            condition |= Q(regarding_work_ticket__in=tickets)
    elif isinstance(record, Opportunity):
        condition = Q(regarding_opportunity=record)
    else:
        condition = Q(regarding_work_ticket=record)
    condition = Q(condition) & only.q()
    activities = Activity.objects.filter(condition, company_id=record.company_id)
    return Timeline(condition=condition, company_id=record.company_id, count=activities.count,
                    keys=activities.order_by("-occurred_at", "-id").values_list("occurred_at", "id"))


class _Counted(Paginator):
    def __init__(self, count: int, per_page: int) -> None:
        super().__init__([], per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self._known_count


@dataclass
class TimelineEntry:
    """One entry of a timeline page: an activity, and the earlier emails of its conversation."""

    activity: Activity
    earlier: list[Activity] = field(default_factory=list)

    @property
    def count(self) -> int:
        return 1 + len(self.earlier)


class TimelinePage(Page):
    """A page of a timeline. Its links carry the key of the page's last (or first) activity, so the
    next page is read from there by index, never by skipping the rows before it."""

    def __init__(self, items: list[Activity], number: int, paginator: Paginator, *, has_newer: bool,
                 has_older: bool) -> None:
        super().__init__(items, number, paginator)
        self._has_newer, self._has_older = has_newer, has_older
        self.older_key = str(TimelineKey.of(items[-1])) if has_older and items else ""
        self.newer_key = str(TimelineKey.of(items[0])) if has_newer and items and number > 2 else ""

    @cached_property
    def entries(self) -> list[TimelineEntry]:
        """The page's activities as its entries: the emails of one conversation are one entry,
        shown at its latest message, with the others inside it (no query: the conversation came
        with each card)."""
        entries: list[TimelineEntry] = []
        by_conversation: dict[uuid.UUID, TimelineEntry] = {}
        for activity in self.object_list:
            email = getattr(activity, "email", None) if activity.kind == Activity.Kind.EMAIL else None
            conversation_id = email.conversation_id if email is not None else None
            if conversation_id is not None and conversation_id in by_conversation:
                by_conversation[conversation_id].earlier.append(activity)
                continue
            entry = TimelineEntry(activity)
            entries.append(entry)
            if conversation_id is not None:
                by_conversation[conversation_id] = entry
        return entries

    def has_next(self) -> bool:
        return self._has_older

    def has_previous(self) -> bool:
        return self._has_newer

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


def timeline_page(timeline: Timeline, *, per_page: int, number: str | None, before: str | None = None,
                  after: str | None = None) -> TimelinePage:
    """One page of ``timeline``: by key when the link carries one (``before``: older than it;
    ``after``: newer), else by page number. The page number a link carries is only shown."""
    paginator = _Counted(timeline.count(), per_page)
    try:
        n = min(max(1, int(number or 1)), paginator.num_pages)
    except ValueError:
        n = 1
    older_than, newer_than = TimelineKey.parse(before), TimelineKey.parse(after)
    if older_than is not None:
        rows = timeline.newest(older_than=older_than, limit=per_page + 1)
        items, has_older = rows[:per_page], len(rows) > per_page
        n = paginator.num_pages if not has_older else max(n, 2)
        has_newer = True
    elif newer_than is not None:
        rows = timeline.oldest(newer_than=newer_than, limit=per_page + 1)
        items, has_newer = rows[:per_page][::-1], len(rows) > per_page
        n = 1 if not has_newer else min(n, paginator.num_pages - 1)
        has_older = True
    else:
        # A page by number starts after the key of the last activity before it, found in the index.
        start = timeline.key_at((n - 1) * per_page - 1) if n > 1 else None
        items = timeline.newest(older_than=start, limit=per_page)
        has_newer, has_older = n > 1, n < paginator.num_pages
    return TimelinePage(items, n, paginator, has_newer=has_newer, has_older=has_older)


# -- email pages ------------------------------------------------------------------------


def email_for_user(user: Any, pk: uuid.UUID | str) -> Activity:
    """An email Activity of the user's company, or 404."""
    queryset = Activity.objects.filter(kind=Activity.Kind.EMAIL).select_related(
        "email", "owner", "regarding_opportunity", "regarding_property", "regarding_work_ticket"
    )
    return get_for_user(queryset, user, pk)


# The messages of a conversation shown on an email page; a longer one shows its latest ones.
CONVERSATION_SHOWN = 50


@dataclass(frozen=True)
class ConversationMessage:
    activity: Activity
    sender: str
    new_text: str
    quoted_text: str
    is_current: bool


def conversation_for_user(user: Any, activity: Activity) -> list[ConversationMessage]:
    """The emails of this email's conversation the user's company holds, oldest first, each with
    its own words apart from the history it quotes (two queries)."""
    email = getattr(activity, "email", None)
    if email is None or email.conversation_id is None:
        return []
    rows = list(
        scoped(Activity, user).filter(kind=Activity.Kind.EMAIL, email__conversation_id=email.conversation_id)
        .select_related("email").only("id", "subject", "occurred_at", "origin", "email__from_name",
                                      "email__from_address", "email__text_body", "body")
        .order_by("-occurred_at", "-id")[:CONVERSATION_SHOWN]
    )
    if len(rows) < 2:
        return []
    shown = []
    for row in reversed(rows):
        split = split_reply(row.email.text_body or row.body)
        shown.append(ConversationMessage(activity=row, sender=person(row.email.from_name, row.email.from_address),
                                         new_text=split.new, quoted_text=split.quoted,
                                         is_current=row.pk == activity.pk))
    return shown


def conversation_for_email(user: Any, activity: Activity) -> Conversation | None:
    """The conversation of an email the user may read (its tenancy is the email's)."""
    email = getattr(activity, "email", None)
    if email is None or email.conversation_id is None:
        return None
    return Conversation.objects.filter(pk=email.conversation_id, company_id=activity.company_id).first()


def may_stop_following(user: Any, conversation: Conversation | None) -> bool:
    """Whether this user may stop following the conversation: it is followed, and the user follows
    conversations (``User.follows_conversations``). The email page offers Stop following only
    then, and the Stop following POST acts only then."""
    return conversation is not None and conversation.following and user.follows_conversations


def conversation_to_stop_following(user: Any, activity: Activity) -> Conversation | None:
    """The email's conversation when this user may stop following it (``may_stop_following``)."""
    conversation = conversation_for_email(user, activity)
    return conversation if may_stop_following(user, conversation) else None


def attachment_for_user(user: Any, activity: Activity, pk: uuid.UUID | str) -> EmailAttachment:
    """One stored attachment of an email the user may read, or 404 (also for ones too large to keep)."""
    queryset = EmailAttachment.objects.filter(email_id=activity.pk, too_large=False).exclude(file="")
    return get_for_user(queryset, user, pk)


def unmatched_emails(user: Any) -> QuerySet[Activity]:
    """The user's own captured mail that is filed on no contact yet. Per user, admins included:
    whoever captured it knows best whom it is about."""
    return (
        scoped(Activity, user)
        .filter(kind=Activity.Kind.EMAIL, origin=Activity.Origin.CAPTURED, owner_id=user.pk, filed=False)
        .select_related("email")
        .only("id", "subject", "occurred_at", "email__from_name", "email__from_address")
        .order_by("-occurred_at", "-id")
    )


@dataclass(frozen=True)
class Choice:
    """One record offered by a chooser: ``value`` is what its form posts back."""

    value: str
    label: str
    detail: str


CHOICES_LIMIT = 20


def regarding_choices(user: Any, q: str) -> list[Choice]:
    """The user's company's Opportunities (by name), Properties (by name or address) and Work
    Tickets (by number or description) matching ``q``, at most 20, mixed so no kind crowds out the others."""
    q = without_nul(q).strip()
    if not q:
        return []
    tickets = scoped(WorkTicket, user).select_related("property")
    number = number_in(q)
    by_number = list(tickets.filter(number=number)) if number is not None else []
    # "dana whit" or "1402 cedar": each word may match a different field.
    by_description = text_search(tickets, q, ("description",), each_word=True).exclude(pk__in=[t.pk for t in by_number])
    opportunities = text_search(scoped(Opportunity, user).select_related("property"), q, ("name",), each_word=True)
    properties = text_search(scoped(Property, user), q, ("name", "street", "city", "state", "postal_code"),
                             each_word=True)
    groups: list[list[Choice]] = [
        [_ticket_choice(ticket) for ticket in by_number],
        [
            Choice(value_of(o), o.name, f"Opportunity{f' · {o.property}' if o.property else ''}")
            for o in opportunities[:CHOICES_LIMIT]
        ],
        [Choice(value_of(p), p.name, f"Property · {p.address}") for p in properties[:CHOICES_LIMIT]],
        [_ticket_choice(ticket) for ticket in by_description[:CHOICES_LIMIT]],
    ]
    mixed = (choice for row in zip_longest(*groups) for choice in row if choice is not None)
    return list(islice(mixed, CHOICES_LIMIT))


def _ticket_choice(ticket: WorkTicket) -> Choice:
    detail = f"Work ticket · {ticket.property}"
    if ticket.description:
        detail += f" · {Truncator(ticket.description).chars(60)}"
    return Choice(value_of(ticket), str(ticket), detail)


def regarding_for_user(user: Any, value: str) -> Regarding:
    """The record a chooser posted back ("kind:uuid"), of the user's company, or 404."""
    return record_for_user(user, value)


def contact_choices(user: Any, q: str) -> list[Choice]:
    """The user's company's contacts whose name or email address matches ``q``, at most 20."""
    q = without_nul(q).strip()
    if not q:
        return []
    contacts = text_search(
        scoped(Contact, user).prefetch_related("emails"),
        q,
        ("first_name", "last_name", "company_name", "emails__address"),
        each_word=True,
        address_fields=("emails__address",),
        company_id=user.company_id,
    )
    return [
        Choice(str(contact.pk), contact.name, " · ".join(filter(None, (contact.primary_email, contact.company_name))))
        for contact in contacts[:CHOICES_LIMIT]
    ]


# -- finding any email ------------------------------------------------------------------------

# A search stops counting here ("More than 100 emails", as a mail client says "of many"): the
# count reads the newest matches as the first page does (the same query), and its pages are
# reached by key however deep.
SEARCH_COUNT_LIMIT = 100


@dataclass(frozen=True)
class EmailFilters:
    """What "Find any email" narrows by; every part optional. ``since`` and ``until`` are whole
    days in the reader's time zone."""

    q: str = ""
    contact: Contact | None = None
    regarding: Regarding | None = None
    origin: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    has_attachment: bool = False

    @property
    def any(self) -> bool:
        return bool(self.q.strip() or self.contact or self.regarding or self.origin or self.since or self.until
                    or self.has_attachment)


def email_search(user: Any, filters: EmailFilters, *, time_zone: dt.tzinfo) -> Timeline:
    """The user's company's emails matching ``filters``, newest first, as a timeline (pages by
    key). Email only: appointments, private or not, are never among the results, and nothing of
    another company is (tenancy by ``company_id``, the contact and Regarding checked by the caller's
    tenant-scoped getters). On PostgreSQL the email rows are searched (``email_search.recent_first``);
    SQLite (the demo) filters the activities."""
    from django.db import connection

    q = filters.q.strip()
    since, until = day_bounds(since=filters.since, until=filters.until, time_zone=time_zone)
    company_id = user.company_id
    if connection.vendor == "postgresql":
        return _email_search_on_postgresql(company_id, filters, q=q, since=since, until=until)
    condition = Q(kind=Activity.Kind.EMAIL)
    if q:
        condition &= text_condition("email__", q, vendor=connection.vendor)
    if filters.contact is not None:
        condition &= Q(contact_links__contact=filters.contact)
    if filters.regarding is not None:
        condition &= Q(**{kind_of(filters.regarding).field: filters.regarding})
    if filters.origin:
        condition &= Q(origin=filters.origin)
    condition &= within_days("occurred_at", since=filters.since, until=filters.until, time_zone=time_zone)
    if filters.has_attachment:
        condition &= Q(email__has_attachment=True)  # the email's flag (migration 0010)
    matching = Activity.objects.filter(condition, company_id=company_id)
    return Timeline(
        condition=condition, company_id=company_id,
        count=lambda: matching.order_by()[:SEARCH_COUNT_LIMIT + 1].count(),
        keys=matching.order_by("-occurred_at", "-id").values_list("occurred_at", "id"),
    )


def _email_search_on_postgresql(company_id: uuid.UUID, filters: EmailFilters, *, q: str, since: dt.datetime | None,
                                until: dt.datetime | None) -> Timeline:
    """The rows a search reads newest first, each on its own (company or contact, time) index: with
    words, the email rows (their words, their time); without, a contact's links when a contact is
    chosen (they carry the activity's time), else the company's email activities. Either way an
    email of the company; without words one with no message row (made before capture) is found too."""
    rows: QuerySet[Any]
    if q or (filters.has_attachment and filters.contact is None):
        # Only an email row has attachments: with that filter alone they are read on its own index.
        rows = EmailMessage.objects.filter(company_id=company_id)
        if q:
            rows = rows.filter(text_condition("", q, vendor="postgresql"))
        activity, id_field = "activity__", "activity_id"
        if filters.contact is not None:
            rows = rows.filter(Exists(ActivityContact.objects.filter(activity_id=OuterRef("activity_id"),
                                                                     contact=filters.contact)))
    elif filters.contact is not None:
        # Links never cross companies (activities.signals); the activity's company is checked too.
        rows = ActivityContact.objects.filter(contact=filters.contact)
        activity, id_field = "activity__", "activity_id"
    else:
        rows = Activity.objects.all()
        activity, id_field = "", "id"
    rows = rows.filter(**{f"{activity}company_id": company_id, f"{activity}kind": Activity.Kind.EMAIL})
    if filters.regarding is not None:
        rows = rows.filter(**{f"{activity}{kind_of(filters.regarding).field}": filters.regarding})
    if filters.origin:
        rows = rows.filter(**{f"{activity}origin": filters.origin})
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    if until is not None:
        rows = rows.filter(occurred_at__lt=until)
    if filters.has_attachment:
        # The email's flag (migration 0010), on email rows with its partial index: a common word
        # with it walks the company's emails with attachments newest first.
        flag = "has_attachment" if rows.model is EmailMessage else f"{activity}email__has_attachment"
        rows = rows.filter(**{flag: True})
    timeline = EmailSearchTimeline(condition=Q(), company_id=company_id, count=lambda: len(timeline.newest_keys()),
                                   keys=rows.none(), rows=rows, id_field=id_field)
    return timeline


@dataclass(frozen=True)
class EmailSearchTimeline(Timeline):
    """Find email on PostgreSQL: a page's keys read from the matching rows a date range at a time
    (``email_search.recent_first``), then its cards by id. The newest keys, up to one more
    than the count's bound, are read once: they are the count and the first page."""

    rows: QuerySet[Any] | None = None
    id_field: str = "activity_id"
    _fetched: dict[str, list[tuple[dt.datetime, uuid.UUID]]] = field(default_factory=dict, compare=False, repr=False)

    def newest_keys(self) -> list[tuple[dt.datetime, uuid.UUID]]:
        if "newest" not in self._fetched:
            self._fetched["newest"] = self._keys(start=None, limit=SEARCH_COUNT_LIMIT + 1)
        return self._fetched["newest"]

    def key_at(self, offset: int) -> TimelineKey | None:
        keys = self.newest_keys()[offset: offset + 1] if offset <= SEARCH_COUNT_LIMIT else self._keys(
            start=None, limit=1, offset=offset)
        return TimelineKey(*keys[0]) if keys else None

    def newest(self, *, older_than: TimelineKey | None, limit: int) -> list[Activity]:
        keys = self.newest_keys()[:limit] if older_than is None and limit <= SEARCH_COUNT_LIMIT + 1 else self._keys(
            start=older_than, limit=limit)
        return self._cards(keys, newer=False)

    def oldest(self, *, newer_than: TimelineKey, limit: int) -> list[Activity]:
        return self._cards(self._keys(start=newer_than, limit=limit, newer=True), newer=True)

    def _keys(self, *, start: TimelineKey | None, limit: int, offset: int = 0,
              newer: bool = False) -> list[tuple[dt.datetime, uuid.UUID]]:
        assert self.rows is not None
        with search_session():
            keys = list(recent_first(self.rows, start=(start.occurred_at, start.id) if start else None,
                                     limit=limit, offset=offset, newer=newer, id_field=self.id_field))
        return sorted(keys, reverse=not newer)

    def _cards(self, keys: list[tuple[dt.datetime, uuid.UUID]], *, newer: bool) -> list[Activity]:
        if not keys:
            return []
        order = (F("occurred_at").asc(), F("id").asc()) if newer else (F("occurred_at").desc(), F("id").desc())
        return list(_timeline(Activity.objects.filter(pk__in=[pk for _at, pk in keys],
                                                      company_id=self.company_id)).order_by(*order))
