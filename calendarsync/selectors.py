"""Reads of appointments. Calendar privacy is decided here, in ``visible_appointments`` and the
helpers it uses, and nowhere else: the calendar pages, the JSON feed, the admin and the owner's
audit entries all come through this module.

The rules (the help article's, and DESIGN.md item 5):
- the owner sees everything on their calendar;
- Public calendar: every member of the company sees the details;
- Private calendar: the members in Shared With see the details;
- an appointment marked private at the provider (Graph sensitivity private / personal /
  confidential, Google visibility private / confidential) shows details to its owner only;
- everyone else in the company sees a busy block: when, and nothing else;
- nobody outside the company sees anything (404).

A busy block is built from a query that selects only the times, so a title, location, note or
attendee of an appointment the viewer may not read never leaves the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When

from accounts.models import MailboxConnection, User
from accounts.tenancy import get_for_user, scoped
from activities import regarding as regarding_kinds
from activities.models import Activity
from activities.regarding import Regarding
from crm.models import Contact

from .models import (
    LONG_APPOINTMENT,
    PRIVATE_SENSITIVITIES,
    Appointment,
    AuditEntry,
    CalendarFeed,
    feed_key_digest,
    read_only_reason,
)


@dataclass(frozen=True)
class BusyBlock:
    """Time the owner is busy, with no details at all."""

    start: dt.datetime
    end: dt.datetime
    all_day: bool
    show_as: str
    busy = True
    title = "Busy"


@dataclass(frozen=True)
class AppointmentSummary:
    """An appointment the viewer may read, as a grid of many calendars shows it: no notes,
    attendees or problems, which such a page does not show and need not fetch."""

    id: uuid.UUID
    start: dt.datetime
    end: dt.datetime
    all_day: bool
    show_as: str
    title: str
    location: str
    is_private: bool
    in_series: bool
    busy = False


@dataclass(frozen=True)
class AppointmentDetails(AppointmentSummary):
    """An appointment the viewer may read, all of it: its summary and the rest."""

    notes: str
    # (name, address, response): response is "accepted", "declined", "tentative" or "".
    attendees: tuple[tuple[str, str, str], ...]
    time_zone: str
    origin: str
    editable: bool
    problems: str
    invite: bool = False
    organizer_name: str = ""
    organizer_address: str = ""
    my_response: str = ""
    outside_window: bool = False
    activity_id: uuid.UUID | None = None

    @property
    def read_only_reason(self) -> str:
        return read_only_reason(origin=self.origin, in_series=self.in_series, attending=bool(self.organizer_address))


Visible = AppointmentDetails | BusyBlock
Glance = AppointmentSummary | BusyBlock

DETAIL_FIELDS = ("id", "start", "end", "all_day", "show_as", "title", "location", "notes", "attendees",
                 "time_zone", "origin", "sensitivity", "series_id", "problems", "invite", "organizer_name",
                 "organizer_address", "my_response", "outside_window", "activity_id")
BUSY_FIELDS = ("start", "end", "all_day", "show_as")
SUMMARY_FIELDS = ("id", "start", "end", "all_day", "show_as", "title", "location", "sensitivity", "series_id")


def _shows_details(privacy: str | None, shared_with_viewer: bool) -> bool:
    """The calendar setting's rule: a calendar without a connection or a Public one shows its
    details to the whole company; a Private one only to the people it is shared with."""
    return privacy is None or privacy == MailboxConnection.Privacy.PUBLIC or shared_with_viewer


def calendar_access(viewer: Any, owner: User, connection: MailboxConnection | None = None) -> str:
    """"owner", "details" or "busy": what ``viewer`` may see of ``owner``'s calendar in general
    (appointments marked private at the provider stay busy blocks for all but the owner)."""
    if viewer.pk == owner.pk:
        return "owner"
    if viewer.company_id is None or viewer.company_id != owner.company_id:
        return "none"
    if connection is None:
        connection = MailboxConnection.objects.filter(user_id=owner.pk).first()
    if connection is None:
        return "details"
    privacy = connection.calendar_privacy
    shared = privacy != MailboxConnection.Privacy.PUBLIC and connection.shared_with.filter(pk=viewer.pk).exists()
    return "details" if _shows_details(privacy, shared) else "busy"


def owners_showing_busy_blocks(viewer: Any) -> set[uuid.UUID]:
    """The colleagues whose calendars show ``viewer`` busy blocks only: ``calendar_access`` for
    every owner of the company at once, in two queries whatever its size."""
    if viewer.company_id is None:
        return set()
    privacy = dict(MailboxConnection.objects.filter(company_id=viewer.company_id)
                   .values_list("user_id", "calendar_privacy"))
    shared = set(MailboxConnection.shared_with.through.objects
                 .filter(user_id=viewer.pk, mailboxconnection__company_id=viewer.company_id)
                 .values_list("mailboxconnection__user_id", flat=True))
    return {owner for owner, setting in privacy.items()
            if owner != viewer.pk and not _shows_details(setting, owner in shared)}


def details_readable(viewer: Any) -> Q:
    """Appointments whose details ``viewer`` may read, as a condition the database applies:
    ``can_read_details`` for many rows at once, each owner's calendar decided once."""
    own = Q(owner_id=viewer.pk)
    if viewer.company_id is None:
        return own
    return own | (Q(company_id=viewer.company_id) & ~Q(owner_id__in=owners_showing_busy_blocks(viewer))
                  & ~Q(sensitivity__in=PRIVATE_SENSITIVITIES))


ADMIN_TIME_FIELDS = ("id", "company", "owner", "start", "end", "all_day", "show_as", "origin", "push",
                     "created_at", "updated_at")


def appointments_for_admin(queryset: QuerySet[Appointment], viewer: Any) -> QuerySet[Appointment]:
    """The admin's appointments: the times only, and a title the database itself replaces with
    "Busy" where the viewer may not read it, so no detail the viewer may not read is ever fetched.
    ``details_shown`` says which rows the viewer may open in full (``appointment_for_admin``)."""
    readable = details_readable(viewer)
    return queryset.only(*ADMIN_TIME_FIELDS).annotate(
        details_shown=Case(When(readable, then=Value(True)), default=Value(False), output_field=BooleanField()),
        shown_title=Case(When(readable, then=F("title")), default=Value("Busy"), output_field=CharField()),
    )


def appointment_for_admin(appointment: Appointment) -> Appointment:
    """One appointment from ``appointments_for_admin``, read in full when the viewer may read it."""
    if getattr(appointment, "details_shown", False):
        full = Appointment.objects.get(pk=appointment.pk)
        full.details_shown = True  # type: ignore[attr-defined]
        return full
    return appointment


def _in_range(queryset: QuerySet[Appointment], start: dt.datetime, end: dt.datetime) -> QuerySet[Appointment]:
    """Appointments overlapping [start, end). Bounding ``start`` from below lets the (owner, start)
    index answer the usual case; appointments longer than ``LONG_APPOINTMENT`` are few and found
    through their own partial index. All-day dates are midnight UTC, so the range is widened by
    a day on each side and the caller keeps the dates that fall in it."""
    low, high = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
    short = Q(start__lt=high, start__gte=low - LONG_APPOINTMENT, end__gt=low)
    long = Q(is_long=True, start__lt=high, end__gt=low)
    # Only all-day appointments need the day either side: a timed one outside [start, end) is
    # left in the database rather than read and dropped (a filter on the rows the index finds).
    timed_within = Q(all_day=True) | Q(start__lt=end, end__gt=start)
    return queryset.filter(short | long, timed_within, cancelled=False).exclude(push=Appointment.Push.DELETE)


def _overlaps(row: dict[str, Any], start: dt.datetime, end: dt.datetime) -> bool:
    if row["all_day"]:
        # Floating dates: compare dates as the viewer reads them.
        first_day = start.date()
        last_day = (end - dt.timedelta(microseconds=1)).date()
        return bool(row["start"].date() <= last_day and row["end"].date() > first_day)
    return bool(row["start"] < end and row["end"] > start)


def visible_appointments(*, viewer: Any, owner: User, start: dt.datetime, end: dt.datetime) -> list[Visible]:
    """What ``viewer`` sees of ``owner``'s calendar between ``start`` and ``end`` (aware, in the
    viewer's zone for all-day dates), in start order. A viewer of another company gets nothing."""
    return visible_calendars(viewer=viewer, owners=[owner], start=start, end=end).get(owner.pk, [])


def visible_calendars(*, viewer: Any, owners: Sequence[User], start: dt.datetime, end: dt.datetime,
                      times_only: bool = False) -> dict[uuid.UUID, list[Visible]]:
    """What ``viewer`` sees of each owner's calendar between ``start`` and ``end``, by owner id,
    each list in start order. Owners outside the viewer's company are left out. ``times_only``
    reads times only, for everyone (Find a time needs nothing else)."""
    return _calendars(viewer=viewer, owners=owners, start=start, end=end, times_only=times_only,
                      fields=DETAIL_FIELDS, build=_details)


def calendars_at_a_glance(*, viewer: Any, owners: Sequence[User], start: dt.datetime,
                          end: dt.datetime) -> dict[uuid.UUID, list[Glance]]:
    """``visible_calendars`` as the team view shows it: titles and places where the viewer may read
    them, busy blocks elsewhere, and no column the page does not show."""
    return _calendars(viewer=viewer, owners=owners, start=start, end=end, times_only=False,
                      fields=SUMMARY_FIELDS, build=_summary)


def _calendars(*, viewer: Any, owners: Sequence[User], start: dt.datetime, end: dt.datetime, times_only: bool,
               fields: tuple[str, ...], build: Callable[..., Any]) -> dict[uuid.UUID, list[Any]]:
    """The one read of many calendars. Four queries at most, whatever the number of owners or
    appointments: two decide whose calendars show busy blocks, one reads the details the viewer
    may read, one the times of the rest."""
    if viewer.company_id is None:
        return {}
    ids = [owner.pk for owner in owners if owner.company_id == viewer.company_id]
    if not ids:
        return {}
    viewer_id = viewer.pk  # read once: the viewer is often a lazy object, and is asked per row
    shown: dict[uuid.UUID, list[Any]] = {pk: [] for pk in ids}
    base = _in_range(Appointment.objects.filter(company_id=viewer.company_id), start, end)
    if times_only:
        hidden = base.filter(owner_id__in=ids)
    else:
        closed = owners_showing_busy_blocks(viewer) if set(ids) != {viewer_id} else set()
        readable = [pk for pk in ids if pk not in closed]
        others = [pk for pk in ids if pk != viewer_id]
        # The owner's condition stays a plain list so the (owner, start) index answers both reads.
        details = base.filter(owner_id__in=readable).filter(
            Q(owner_id=viewer_id) | ~Q(sensitivity__in=PRIVATE_SENSITIVITIES))
        for row in details.values(*fields, "owner_id"):
            if _overlaps(row, start, end):
                shown[row["owner_id"]].append(build(row, editable=row["owner_id"] == viewer_id))
        hidden = base.filter(owner_id__in=others).filter(
            Q(owner_id__in=[pk for pk in others if pk in closed]) | Q(sensitivity__in=PRIVATE_SENSITIVITIES))
    if times_only or len(ids) > 1 or ids[0] != viewer_id:
        for row in hidden.values(*BUSY_FIELDS, "owner_id"):
            if _overlaps(row, start, end):
                shown[row["owner_id"]].append(BusyBlock(start=row["start"], end=row["end"], all_day=row["all_day"],
                                                        show_as=row["show_as"]))
    for items in shown.values():
        items.sort(key=lambda item: (not item.all_day, item.start))
    return shown


def _summary(row: dict[str, Any], *, editable: bool) -> AppointmentSummary:
    return AppointmentSummary(
        id=row["id"], start=row["start"], end=row["end"], all_day=row["all_day"], show_as=row["show_as"],
        title=row["title"], location=row["location"], is_private=row["sensitivity"] in PRIVATE_SENSITIVITIES,
        in_series=bool(row["series_id"]))


def _details(row: dict[str, Any], *, editable: bool) -> AppointmentDetails:
    return AppointmentDetails(
        id=row["id"], start=row["start"], end=row["end"], all_day=row["all_day"], show_as=row["show_as"],
        title=row["title"], location=row["location"], notes=row["notes"],
        attendees=tuple(_attendee(person) for person in row["attendees"] or []),
        time_zone=row["time_zone"], origin=row["origin"], is_private=row["sensitivity"] in PRIVATE_SENSITIVITIES,
        in_series=bool(row["series_id"]),
        editable=editable and not read_only_reason(origin=row["origin"], in_series=bool(row["series_id"]),
                                                   attending=bool(row["organizer_address"])),
        problems=row["problems"], invite=row["invite"], organizer_name=row["organizer_name"],
        organizer_address=row["organizer_address"], my_response=row["my_response"],
        outside_window=row["outside_window"], activity_id=row["activity_id"],
    )


def _attendee(person: Any) -> tuple[str, str, str]:
    """An attendee as stored: [name, address] before responses were kept, [name, address, response] since."""
    name, address, *rest = [*person, ""][:3]
    return str(name), str(address), str(rest[0] if rest else "")


def can_read_details(viewer: Any, appointment: Appointment) -> bool:
    """Whether ``viewer`` may read this appointment's details (the same rule, for one row)."""
    access = calendar_access(viewer, appointment.owner)
    if access == "owner":
        return True
    return access == "details" and not appointment.is_private


def readable_details_q(viewer: Any) -> Q:
    """The appointments whose details ``viewer`` may read, as a filter for a query: the rule of
    ``calendar_access`` and ``can_read_details``, for searching without reading hidden columns."""
    own = Q(owner_id=viewer.pk)
    if viewer.company_id is None:
        return own
    closed_calendar = MailboxConnection.objects.filter(user_id=OuterRef("owner_id")).exclude(
        calendar_privacy=MailboxConnection.Privacy.PUBLIC)
    shared_with_viewer = MailboxConnection.objects.filter(user_id=OuterRef("owner_id"), shared_with=viewer.pk)
    colleague = (Q(company_id=viewer.company_id) & ~Q(sensitivity__in=PRIVATE_SENSITIVITIES)
                 & (~Exists(closed_calendar) | Exists(shared_with_viewer)))
    return own | colleague


def appointment_for_viewer(viewer: Any, pk: uuid.UUID | str) -> Visible:
    """One appointment of the viewer's company as the viewer may see it, or 404."""
    row = get_for_user(Appointment.objects.select_related("owner").filter(cancelled=False)
                       .exclude(push=Appointment.Push.DELETE).only("id", "owner", "company", "sensitivity"),
                       viewer, pk)
    if can_read_details(viewer, row):
        values = Appointment.objects.filter(pk=row.pk).values(*DETAIL_FIELDS).get()
        return _details(values, editable=row.owner_id == viewer.pk)
    busy = Appointment.objects.filter(pk=row.pk).values(*BUSY_FIELDS).get()
    return BusyBlock(**busy)


def own_appointment(viewer: Any, pk: uuid.UUID | str) -> Appointment:
    """One of the viewer's own appointments (to change or delete), or 404: another user's
    appointment is as unknown here as another company's."""
    return get_for_user(Appointment.objects.filter(owner_id=viewer.pk, cancelled=False)
                        .exclude(push=Appointment.Push.DELETE), viewer, pk)


def calendar_owners(viewer: Any) -> QuerySet[User]:
    """Whose calendars the viewer can open: everyone in their company (colleagues' private
    calendars show as busy blocks)."""
    return scoped(User, viewer).filter(is_active=True).order_by("full_name", "email")


def colleagues_for(viewer: Any) -> QuerySet[User]:
    """Who can be a colleague on the viewer's appointments: the other people of their company."""
    return calendar_owners(viewer).exclude(pk=viewer.pk)


def audit_entries_for(viewer: Any) -> QuerySet[AuditEntry]:
    """The losing versions of the viewer's own appointments: never anyone else's."""
    return scoped(AuditEntry, viewer).filter(owner_id=viewer.pk)


def contacts_of(activity_id: uuid.UUID | None) -> list[Contact]:
    """The contacts an appointment is with: those of its Activity, the one place they are kept."""
    if activity_id is None:
        return []
    return list(Contact.objects.filter(activities=activity_id).prefetch_related("emails")
                .order_by("last_name", "first_name"))


def colleagues_of(appointment_id: uuid.UUID | None) -> list[User]:
    """The colleagues an appointment is with (those chosen in Aspire), by name."""
    if appointment_id is None:
        return []
    return list(User.objects.filter(appointments_with=appointment_id).order_by("full_name", "email"))


def regarding_of_activity(activity_id: uuid.UUID | None) -> Regarding | None:
    """What an appointment is regarding: its Activity's Regarding."""
    if activity_id is None:
        return None
    activity = Activity.objects.select_related(*regarding_kinds.FIELDS).get(pk=activity_id)
    return regarding_kinds.regarding_of(activity)


def feed_owner(key: str) -> User | None:
    """Whose calendar link this key is, if it is a live one (an active user's)."""
    if not key or len(key) > 200:
        return None
    feed = CalendarFeed.objects.select_related("owner").filter(key_digest=feed_key_digest(key),
                                                               owner__is_active=True).first()
    return feed.owner if feed is not None else None


def has_feed_link(user: Any) -> bool:
    return CalendarFeed.objects.filter(owner_id=user.pk).exists()
