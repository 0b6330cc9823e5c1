"""The calendar pages. Every appointment shown comes through ``calendarsync.selectors``, which
applies the privacy rules; every record is looked up within the viewer's company."""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
import functools
import html
import uuid
import zoneinfo
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST, require_safe

from accounts.dates import in_supported_range
from accounts.http import require_safe_or_post
from accounts.models import User
from accounts.moments import moment
from accounts.tenancy import get_for_user, scoped
from activities import regarding
from activities.regarding import Regarding
from activities.selectors import contact_choices, regarding_choices
from crm.models import Contact, Opportunity, Property

from . import selectors
from .forms import RECURRING_HELP, AppointmentForm
from .ical import feed_for
from .layout import MAX_LANES, ROW, ROWS_PER_DAY, grid_rows, side_by_side
from .models import OUTSIDE_WINDOW_NOTE, Appointment
from .scheduling import Person, Slot, TimeTaken, free_slots, working_hours_for, working_hours_label
from .selectors import AppointmentDetails, BusyBlock, Glance, Visible
from .services import (
    ReadOnlyAppointment,
    create_appointment,
    delete_appointment,
    make_feed_link,
    revoke_feed_link,
    update_appointment,
)

VIEWS = ("day", "week", "month")
Shown = TypeVar("Shown", Visible, Glance)
TEAM_VIEWS = ("day", "week")
# The most colleagues one team view or search takes: wider than any screen, and a bound on the reads.
MAX_PEOPLE = 30
LENGTHS = (15, 30, 45, 60, 90, 120, 180, 240, 480)  # minutes, Find a time's choices
SEARCH_DAYS = 7


@dataclass(frozen=True)
class Day:
    date: dt.date
    items: list[Visible]
    in_month: bool = True
    is_today: bool = False


def _zone(request: HttpRequest) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(getattr(request.user, "time_zone", "UTC") or "UTC")


def _anchor(request: HttpRequest, zone: zoneinfo.ZoneInfo) -> dt.date:
    """The ``date`` a calendar page opens at; today when it is no date, or one the calendar does not go to."""
    try:
        anchor = dt.date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        anchor = None
    return anchor if anchor is not None and in_supported_range(anchor) else timezone.now().astimezone(zone).date()


def _days(view: str, anchor: dt.date) -> tuple[list[dt.date], dt.date, dt.date]:
    """The dates a view shows, and the previous and next anchors."""
    if view == "day":
        return [anchor], anchor - dt.timedelta(days=1), anchor + dt.timedelta(days=1)
    if view == "week":
        monday = anchor - dt.timedelta(days=anchor.weekday())
        return [monday + dt.timedelta(days=n) for n in range(7)], anchor - dt.timedelta(days=7), \
            anchor + dt.timedelta(days=7)
    first = anchor.replace(day=1)
    weeks = month_calendar.Calendar().monthdatescalendar(first.year, first.month)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return [day for week in weeks for day in week], previous, following


def _local_bounds(day: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    # Midnight to midnight on the wall clock: 23 or 25 hours long on the days clocks change.
    return dt.datetime.combine(day, dt.time(), zone), dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)


def _within(item: Visible | Glance, day: dt.date, bounds: tuple[dt.datetime, dt.datetime]) -> bool:
    if item.all_day:
        return item.start.date() <= day < item.end.date()
    start, end = bounds
    return item.start < end and (item.end > start or item.start == item.end >= start)


def _by_day(items: Sequence[Shown], dates: list[dt.date], zone: zoneinfo.ZoneInfo) -> list[list[Shown]]:
    """Each date's items by ``_within``, asked only of the days an item can fall on (found by
    bisection of the days' bounds, worked out once): a team week sorts hundreds of items. The
    bounds are compared in UTC, as the items' times come from the database: comparing times of
    two different zones costs each comparison a conversion."""
    bounds = [_local_bounds(day, zone) for day in dates]
    starts = [start.astimezone(dt.UTC) for start, _ in bounds]
    ends = [end.astimezone(dt.UTC) for _, end in bounds]
    out: list[list[Shown]] = [[] for _ in dates]
    last_index = len(dates) - 1
    for item in items:
        if item.all_day:
            first, last = bisect_left(dates, item.start.date()), bisect_left(dates, item.end.date())
        else:
            first = bisect_right(starts, item.start) - 1
            if first >= 0 and item.start < item.end <= ends[first]:  # the usual case: within one day
                out[first].append(item)
                continue
            first, last = max(first, 0), bisect_right(starts, item.end)
        for index in range(first, min(max(last, first + 1), last_index + 1)):
            if _within(item, dates[index], bounds[index]):
                out[index].append(item)
    return out


# "9:05 AM" for each minute of a day, made once: the pages show two per appointment.
_CLOCK_LABELS = [f"{hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
                 for hour in range(24) for minute in range(60)]


def _clock(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return _CLOCK_LABELS[local.hour * 60 + local.minute]


def _block_html(item: Visible | Glance, zone: zoneinfo.ZoneInfo, *, css: str = "", chip: bool = False) -> str:
    """One appointment on a grid or in a team week cell, as HTML (every value escaped), to be
    joined with its neighbours into one safe string. Drawn here rather than by a template
    include: a team week of 20 colleagues holds hundreds of them, and an include costs far more
    than this. A busy block is a plain box (nothing to open)."""
    when = "All day" if item.all_day else f"{_clock(item.start, zone)}\u2013{_clock(item.end, zone)}"
    classes = "cal-block cal-chip" if chip else "cal-block"
    if item.busy:
        classes += " cal-busy"
    if item.show_as == "free":
        classes += " cal-free"
    if css:
        classes += " " + css
    if isinstance(item, BusyBlock):
        return (f'<div class="{classes}"><span class="cal-block-time">{when}</span> '
                '<span class="cal-title">Busy</span></div>')
    where = f' <span class="cal-where">{_escape(item.location)}</span>' if item.location and not chip else ""
    return (f'<a class="{classes}" href="{_detail_url_prefix()}{item.id}/"><span class="cal-block-time">{when}</span> '
            f'<span class="cal-title">{_escape(item.title or "(no title)")}</span>{where}</a>')


def _escape(text: str) -> str:
    """Django's ``escape`` without its lazy-string wrapper, which costs more than the escaping."""
    return html.escape(text, quote=True)


_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


@functools.cache
def _detail_url_prefix() -> str:
    """The appointment page's URL up to its id, reversed once rather than per block."""
    url = reverse("calendarsync:appointment_detail", args=[_PLACEHOLDER])
    prefix, placeholder, rest = url.partition(_PLACEHOLDER)
    assert placeholder and rest == "/", url  # the id ends the path, so a prefix and the id make the URL
    return prefix


def _joined(parts: Sequence[str]) -> SafeString:
    # Every part was escaped as it was made (``_block_html``, the grid's own classes).
    return mark_safe("".join(parts))  # noqa: S308


@dataclass(frozen=True)
class TeamRow:
    person: User
    cells: SafeString  # the row's seven day cells, drawn here: a template loop per cell costs more


@dataclass(frozen=True)
class Column:
    """One column of an hour grid: a day of one calendar, or one person on one day."""

    label: str
    date: dt.date
    user: str  # the calendar's owner, for the column's links ("" for the viewer's own)
    is_today: bool
    all_day: SafeString  # the all-day row's chips
    body: SafeString  # the working hours' stretches, the timed blocks and the current-time line


def _column(items: Sequence[Visible | Glance], day: dt.date, zone: zoneinfo.ZoneInfo, now: dt.datetime, *, label: str,
            owner: User, viewer: Any) -> Column:
    day_start, day_end = _local_bounds(day, zone)
    on_day = [item for item in items if _within(item, day, (day_start, day_end))]
    timed = [item for item in on_day if not item.all_day]
    placed = side_by_side(timed, lambda item: (max(item.start, day_start), min(item.end, day_end)))
    body = [f'<div class="cal-work q{row} h{rows}" aria-hidden="true"></div>' for row, rows in
            (grid_rows(a, b, day, zone) for a, b in working_hours_for(owner).intervals(day_start, day_end))]
    for p in placed:
        row, rows = grid_rows(p.item.start, p.item.end, day, zone)
        body.append(_block_html(p.item, zone, css=f"q{row} h{rows} lane-{min(p.lane, MAX_LANES - 1)}-"
                                                  f"{min(p.lanes, MAX_LANES)}"))
    is_today = day_start <= now < day_end
    if is_today:
        body.append(f'<div class="cal-now q{grid_rows(now, now, day, zone)[0]}" title="Now">'
                    '<span class="sr-only">Now</span></div>')
    return Column(label=label, date=day, user="" if owner.pk == viewer.pk else str(owner.pk), is_today=is_today,
                  all_day=_joined([_block_html(item, zone, chip=True) for item in on_day if item.all_day]),
                  body=_joined(body))


def _team_rows(people: list[User], calendars: dict[uuid.UUID, list[Glance]], dates: list[dt.date],
               zone: zoneinfo.ZoneInfo, today: dt.date) -> list[TeamRow]:
    """The team week: a row per person, a cell per day, each cell's opening made once per date."""
    openings = [f'<div class="cal-team-day{" cal-today" if d == today else ""}" role="cell">'
                f'<span class="cal-team-date">{d:%a} {d.day}</span>' for d in dates]
    rows = []
    for person in people:
        cells: list[str] = []
        for opening, on_day in zip(openings, _by_day(calendars.get(person.pk, []), dates, zone), strict=True):
            cells.append(opening)
            cells.extend(_block_html(item, zone, chip=True) for item in on_day)
            cells.append("</div>")
        rows.append(TeamRow(person=person, cells=_joined(cells)))
    return rows


def _hours() -> list[tuple[str, str]]:
    """The grid's hour labels and their rows' classes."""
    rows_per_hour = dt.timedelta(hours=1) // ROW
    return [(dt.time(hour).strftime("%-I %p"), f"q{hour * rows_per_hour}") for hour in range(ROWS_PER_DAY
                                                                                              // rows_per_hour)]


def _work_start_row(people: Sequence[User], day: dt.date, zone: zoneinfo.ZoneInfo) -> int:
    """Where an hour grid opens: the row of the earliest working-day start among ``people`` (each
    on their own clock, from their User Settings, as their shading is), on the viewer's ``day``
    and clock. The hours before and after are a scroll away."""
    starts = [dt.datetime.combine(day, hours.start, hours.zone).astimezone(zone)
              for hours in map(working_hours_for, people)]
    return min(grid_rows(start, start, start.date(), zone)[0] for start in starts)


def _owner(request: HttpRequest) -> User:
    raw = request.GET.get("user") or request.POST.get("user")
    if not raw:
        return request.user  # type: ignore[return-value]
    return get_for_user(selectors.calendar_owners(request.user), request.user, raw)


@login_required
@require_safe
def calendar_page(request: HttpRequest) -> HttpResponse:
    zone = _zone(request)
    requested = request.GET.get("view", "")
    view = requested if requested in VIEWS else "week"
    anchor = _anchor(request, zone)
    owner = _owner(request)
    dates, previous, following = _days(view, anchor)
    start, _ = _local_bounds(dates[0], zone)
    _, end = _local_bounds(dates[-1], zone)
    items = selectors.visible_appointments(viewer=request.user, owner=owner, start=start, end=end)
    today = timezone.now().astimezone(zone).date()
    days = [Day(date=d, items=on_day, in_month=d.month == anchor.month, is_today=d == today)
            for d, on_day in zip(dates, _by_day(items, dates, zone), strict=True)]
    now = timezone.now()
    columns = [] if view == "month" else [
        _column(items, d, zone, now, label=f"{d:%a, %b} {d.day}", owner=owner, viewer=request.user) for d in dates]
    return render(request, "calendarsync/calendar.html", {
        "columns": columns, "hours": _hours(), "work_start_row": _work_start_row([owner], anchor, zone),
        "view": view, "anchor": anchor, "previous": previous, "following": following, "today": today,
        "days": days, "owner": owner, "is_own": owner.pk == request.user.pk,
        "owners": _owner_choices(request.user, owner), "views": VIEWS,
        "access": selectors.calendar_access(request.user, owner),
        "audit_entries": selectors.audit_entries_for(request.user)[:5] if owner.pk == request.user.pk else [],
        "zone": zone.key,
    })


def _owner_choices(viewer: Any, owner: User) -> list[tuple[str, str, bool]]:
    """The calendar picker's options as (value, label, selected), built here rather than in the
    template: a company of a few hundred people would otherwise cost a template loop per person."""
    people = selectors.calendar_owners(viewer).only("id", "full_name", "email")
    return [(str(person.pk), f"Me ({person})" if person.pk == viewer.pk else str(person), person.pk == owner.pk)
            for person in people]


@login_required
@require_safe
def calendar_feed(request: HttpRequest) -> JsonResponse:
    """The same appointments as JSON (for scripts and the page's future needs), privacy applied."""
    owner = _owner(request)
    try:
        start = dt.datetime.fromisoformat(request.GET["start"])
        end = dt.datetime.fromisoformat(request.GET["end"])
    except (KeyError, ValueError):
        return JsonResponse({"error": "start and end are required, as ISO 8601 date-times"}, status=400)
    zone = _zone(request)
    start = start if start.tzinfo else start.replace(tzinfo=zone)
    end = end if end.tzinfo else end.replace(tzinfo=zone)
    if end <= start or end - start > dt.timedelta(days=62):
        return JsonResponse({"error": "the range must be positive and at most 62 days"}, status=400)
    if not (in_supported_range(start.date()) and in_supported_range(end.date())):
        return JsonResponse({"error": "the range must be within the years the calendar shows"}, status=400)
    items = selectors.visible_appointments(viewer=request.user, owner=owner, start=start, end=end)
    return JsonResponse({"owner": str(owner.pk), "appointments": [_as_json(item) for item in items]})


def _as_json(item: Visible) -> dict[str, object]:
    times = {"start": item.start.isoformat(), "end": item.end.isoformat(), "all_day": item.all_day,
             "show_as": item.show_as}
    if isinstance(item, AppointmentDetails):
        return {"busy": False, "id": str(item.id), **times, "title": item.title, "location": item.location,
                "notes": item.notes,
                "attendees": [{"name": n, "address": a, "response": r} for n, a, r in item.attendees],
                "time_zone": item.time_zone, "origin": item.origin, "private": item.is_private,
                "recurring": item.in_series, "editable": item.editable, "invite": item.invite,
                "organizer": {"name": item.organizer_name, "address": item.organizer_address}
                if item.organizer_address else None,
                "my_response": item.my_response, "outside_window": item.outside_window}
    return {"busy": True, **times}


@login_required
@require_safe
def appointment_detail(request: HttpRequest, pk: str) -> HttpResponse:
    item = selectors.appointment_for_viewer(request.user, pk)
    details = isinstance(item, AppointmentDetails)
    return render(request, "calendarsync/appointment_detail.html", {
        "item": item, "zone": _zone(request).key,
        "contacts": selectors.contacts_of(item.activity_id) if details else [],  # type: ignore[union-attr]
        "colleagues": selectors.colleagues_of(item.id) if details else [],  # type: ignore[union-attr]
        "regarding": selectors.regarding_of_activity(item.activity_id) if details else None,  # type: ignore[union-attr]
        "outside_window_note": OUTSIDE_WINDOW_NOTE,
    })


def _back_to_calendar(appointment_start: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    return f"{reverse('calendarsync:calendar')}?date={appointment_start.astimezone(zone).date().isoformat()}"


# -- the appointment form: its contacts and Regarding ----------------------------------------


def _uuids(values: list[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue  # not a record of anyone's: it is simply not offered back
    return found


def _contact_label(contact: Contact) -> str:
    return " · ".join(filter(None, (contact.name, contact.primary_email)))


def _contact_options(user: Any, chosen: list[str], q: str) -> list[tuple[str, str]]:
    """The contacts the form offers: those chosen (of the user's company only: any other id is
    not offered, so posting it is refused as an invalid choice), then the matches of a search."""
    contacts = scoped(Contact, user).filter(pk__in=_uuids(chosen)).prefetch_related("emails")
    options = {str(contact.pk): _contact_label(contact) for contact in contacts}
    for choice in contact_choices(user, q):
        options.setdefault(choice.value, " · ".join(filter(None, (choice.label, choice.detail))))
    return list(options.items())


def _regarding_options(user: Any, chosen: list[str], q: str) -> list[tuple[str, str]]:
    """What the Regarding chooser offers: the records given (the page it was opened from, the
    current one, the chosen contacts' own), then the matches of a search, all through the one
    registry and within the user's company."""
    options: dict[str, str] = {}
    for value in chosen:
        if not value:
            continue
        try:
            record = regarding.record_for_user(user, value)
        except Http404:
            continue
        key, label = regarding.choice_of(record)
        options[key] = label
    for choice in regarding_choices(user, q):
        options.setdefault(choice.value, f"{choice.label} · {choice.detail}")
    return list(options.items())


RELATED_LIMIT = 20


def _related_regarding(contacts: list[Contact]) -> list[str]:
    """The records the contacts' appointment is likely about: their opportunities and properties
    (two queries, however many contacts)."""
    if not contacts:
        return []
    opportunities = Opportunity.objects.filter(contact__in=contacts).order_by("name")[:RELATED_LIMIT]
    properties = Property.objects.filter(contacts__in=contacts).distinct().order_by("name")[:RELATED_LIMIT]
    return [*(regarding.value_of(o) for o in opportunities), *(regarding.value_of(p) for p in properties)]


def _booked_slot(params: Any) -> tuple[dt.datetime, dt.datetime] | None:
    """The ``start`` and ``end`` of Find a time's "Book this slot", as ISO 8601 instants; None
    when either is missing, unreadable or not an instant (no offset)."""
    try:
        start = dt.datetime.fromisoformat(params.get("start", ""))
        end = dt.datetime.fromisoformat(params.get("end", ""))
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    return start, end


def _prefill_times(slot: tuple[dt.datetime, dt.datetime] | None, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """The date and times of a booked slot, on the viewer's clock. Only filled in: the form checks
    them when saved, as any it is given. Anything unreadable is left out, and the form opens with
    its usual times."""
    if slot is None:
        return {}
    start, end = (instant.astimezone(zone) for instant in slot)
    return {"date": start.date(), "start_time": start.time(), "end_time": end.time()}


def _slot_gone(request: HttpRequest, start: dt.datetime, end: dt.datetime, zone: zoneinfo.ZoneInfo) -> HttpResponse:
    """A booking link to a slot that has started (the page stayed open, or the link was made by
    hand) opens no form: back to Find a time, for the same people and length, from now on."""
    messages.error(request, f"That slot ({moment(start, zone)}) has already started: here are the next free times.")
    minutes = (end - start) // dt.timedelta(minutes=1)
    # The people Find a time searched, as its link says; a link without them (made by hand, or
    # kept from before they were written into it): the user and the colleagues to invite.
    searched = _uuids(request.GET.getlist("people"))
    people = searched or _uuids([str(request.user.pk), *request.GET.getlist("colleagues")])
    params: dict[str, object] = {"people": [str(pk) for pk in dict.fromkeys(people)]}
    if minutes in LENGTHS:
        params["minutes"] = minutes
    return redirect(f"{reverse('calendarsync:find_a_time')}?{_query(**params)}")


def _prefill(user: Any, params: Any, zone: zoneinfo.ZoneInfo,
             slot: tuple[dt.datetime, dt.datetime] | None) -> dict[str, Any]:
    """What "New appointment" fills in: from a record's page, the record's contacts, the record as
    the Regarding, and a property's address as the location; from Find a time, the slot's times,
    a title, the colleagues (ticked only where they are the user's company's: the form offers no
    one else) and Send invitations."""
    initial: dict[str, Any] = _prefill_times(slot, zone)
    if params.get("title"):
        initial["title"] = str(params["title"])
    if params.getlist("colleagues"):
        initial["colleagues"] = [str(pk) for pk in _uuids(params.getlist("colleagues"))]
    if params.get("invite"):
        initial["invite"] = True
    contacts: list[Contact] = []
    if params.get("contact"):
        contacts = [get_for_user(Contact.objects.prefetch_related("emails"), user, params["contact"])]
    elif params.get("regarding"):
        record = regarding.record_for_user(user, params["regarding"])
        initial["regarding"] = regarding.value_of(record)
        place = record if isinstance(record, Property) else getattr(record, "property", None)
        if isinstance(record, Opportunity):
            contacts = [record.contact] if record.contact else []
        elif place is not None:
            contacts = list(place.contacts.all())
        if place is not None:
            initial["location"] = place.address
    initial["contacts"] = [str(contact.pk) for contact in contacts]
    initial["_regarding_offered"] = [initial.get("regarding", ""), *_related_regarding(contacts)]
    return initial


def _bound_as_initial(data: Any) -> dict[str, Any]:
    """A posted form shown again unsaved (after a search), as the user left it, without errors."""
    initial: dict[str, Any] = {key: data.get(key) for key in data if key != "csrfmiddlewaretoken"}
    initial["contacts"] = data.getlist("contacts")
    initial["colleagues"] = data.getlist("colleagues")
    return initial


def _appointment_form(request: HttpRequest, zone: zoneinfo.ZoneInfo, initial: dict[str, Any],
                      ) -> tuple[AppointmentForm, bool]:
    """The form, and whether it is to be saved (not a search for contacts or a Regarding)."""
    data = request.POST if request.method == "POST" else None
    searching = data is not None and "find" in data
    source = _bound_as_initial(data) if data is not None else initial
    chosen = list(source.get("contacts") or [])
    offered = [str(source.get("regarding") or ""), *initial.get("_regarding_offered", [])]
    contact_options = _contact_options(request.user, chosen, str(source.get("contact_q") or "") if searching else "")
    regarding_options = _regarding_options(request.user, offered, str(source.get("regarding_q") or "")
                                           if searching else "")
    kwargs: dict[str, Any] = {"time_zone": zone.key, "contact_choices": contact_options,
                              "regarding_choices": regarding_options,
                              "colleague_choices": selectors.colleagues_for(request.user)}
    if data is None or searching:
        return AppointmentForm(initial=source, **kwargs), False
    return AppointmentForm(data, initial=initial, **kwargs), True


def _links(request: HttpRequest, form: AppointmentForm) -> tuple[list[Contact], Regarding | None]:
    contacts = list(scoped(Contact, request.user).filter(pk__in=form.cleaned_data["contacts"])
                    .prefetch_related("emails"))
    value = form.cleaned_data.get("regarding") or ""
    return contacts, regarding.record_for_user(request.user, value) if value else None


def _render_form(request: HttpRequest, form: AppointmentForm, editing: AppointmentDetails | None) -> HttpResponse:
    return render(request, "calendarsync/appointment_form.html", {
        "form": form, "recurring_help": RECURRING_HELP, "editing": editing,
        "searched": request.method == "POST" and "find" in request.POST,
    })


@login_required
@require_safe_or_post
def appointment_create(request: HttpRequest) -> HttpResponse:
    zone = _zone(request)
    # Only a booked slot must be still to come: times typed into the form may be past (a visit
    # logged after the fact), and a form opened in time is saved however long it stays open.
    slot = _booked_slot(request.GET)
    if request.method != "POST" and slot is not None and slot[0] < timezone.now():
        return _slot_gone(request, *slot, zone)
    initial = {"date": _anchor(request, zone), "start_time": dt.time(9), "end_time": dt.time(10),
               **_prefill(request.user, request.GET, zone, slot)}
    form, saving = _appointment_form(request, zone, initial)
    if saving and form.is_valid():
        contacts, about = _links(request, form)
        try:
            appointment = create_appointment(owner=request.user, data=form.to_input(),  # type: ignore[arg-type]
                                             contacts=contacts, regarding=about,
                                             colleagues=form.cleaned_data["colleagues"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Appointment saved. It goes to your calendar app at the next sync.")
            return redirect(_back_to_calendar(appointment.start, zone))
    return _render_form(request, form, None)


def _own(request: HttpRequest, pk: str) -> tuple[Appointment, AppointmentDetails]:
    """The viewer's own appointment, and how it reads; 404 for anyone else's or another company's."""
    appointment = selectors.own_appointment(request.user, pk)
    item = selectors.appointment_for_viewer(request.user, appointment.pk)
    if not isinstance(item, AppointmentDetails):  # the owner always reads their own
        raise Http404("No such record.")
    return appointment, item


@login_required
@require_safe_or_post
def appointment_edit(request: HttpRequest, pk: str) -> HttpResponse:
    zone = _zone(request)
    appointment, item = _own(request, pk)
    if not item.editable:
        return render(request, "calendarsync/read_only.html", {"item": item, "message": item.read_only_reason},
                      status=403)
    contacts = selectors.contacts_of(appointment.activity_id)
    current = selectors.regarding_of_activity(appointment.activity_id)
    initial = {**AppointmentForm.initial_for(item, zone.key), "contacts": [str(c.pk) for c in contacts],
               "colleagues": [str(user.pk) for user in selectors.colleagues_of(appointment.pk)],
               "regarding": regarding.value_of(current) if current else "",
               "_regarding_offered": [regarding.value_of(current) if current else "", *_related_regarding(contacts)]}
    form, saving = _appointment_form(request, zone, initial)
    if saving and form.is_valid():
        chosen, about = _links(request, form)
        try:
            update_appointment(appointment=appointment, editor=request.user,  # type: ignore[arg-type]
                               data=form.to_input(), contacts=chosen, regarding=about,
                               colleagues=form.cleaned_data["colleagues"])
        except ReadOnlyAppointment as exc:
            return render(request, "calendarsync/read_only.html", {"item": item, "message": exc.message}, status=403)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Appointment updated.")
            return redirect(_back_to_calendar(form.cleaned_data["start"], zone))
    return _render_form(request, form, item)


@login_required
@require_POST
def appointment_delete(request: HttpRequest, pk: str) -> HttpResponse:
    zone = _zone(request)
    appointment, item = _own(request, pk)
    try:
        delete_appointment(appointment=appointment, editor=request.user)  # type: ignore[arg-type]
    except ReadOnlyAppointment as exc:
        return render(request, "calendarsync/read_only.html", {"item": item, "message": exc.message}, status=403)
    messages.success(request, "Appointment deleted.")
    return redirect(_back_to_calendar(item.start, zone))


@login_required
@require_safe
def audit_entries(request: HttpRequest) -> HttpResponse:
    entries = []
    for entry in selectors.audit_entries_for(request.user)[:200]:
        kept = entry.kept_version
        times = {name: dt.datetime.fromisoformat(kept[name]) for name in ("start", "end") if kept.get(name)}
        entries.append({"entry": entry, "kept": kept, **times})
    return render(request, "calendarsync/audit_entries.html", {"entries": entries})


def _chosen_people(request: HttpRequest) -> tuple[list[User], list[str]]:
    """The colleagues chosen in ``people``, looked up within the viewer's company (one query), and
    what was wrong with the choice. Someone of another company is as unknown as a made-up id."""
    raw = request.GET.getlist("people")
    problems: list[str] = []
    ids: list[uuid.UUID] = []
    for value in raw:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            if not problems:  # said once, however many values are mangled
                problems.append("One of the chosen people is not a person of your company.")
    if len(set(ids)) > MAX_PEOPLE:
        problems.append(f"Choose at most {MAX_PEOPLE} people at a time.")
        ids = ids[:MAX_PEOPLE]
    people = list(selectors.calendar_owners(request.user).filter(pk__in=ids))
    if len(people) < len(set(ids)) and not problems:
        problems.append("One of the chosen people is not a person of your company.")
    return people, problems


def _people_choices(viewer: Any, chosen: list[User]) -> SafeString:
    """The company's people as checkboxes, drawn here: a template loop over a few hundred people
    costs more than the rest of the page."""
    chosen_ids = {person.pk for person in chosen}
    viewer_id = viewer.pk
    people = selectors.calendar_owners(viewer).values_list("id", "full_name", "email")
    return _joined([
        f'<label><input type="checkbox" name="people" value="{pk}"{" checked" if pk in chosen_ids else ""}> '
        f'{_escape(f"Me ({name or email})" if pk == viewer_id else name or email)}</label>'
        for pk, name, email in people])


def _query(**params: object) -> str:
    return urlencode([(key, value) for key, values in params.items()
                      for value in (values if isinstance(values, list) else [values])])


@login_required
@require_safe
def team_view(request: HttpRequest) -> HttpResponse:
    """Chosen colleagues side by side for a day (an hour grid, a column each) or a week (a row
    each), every calendar through the privacy selector: busy blocks where details are not shared."""
    zone = _zone(request)
    requested = request.GET.get("view", "")
    view = requested if requested in TEAM_VIEWS else "day"
    anchor = _anchor(request, zone)
    people, problems = _chosen_people(request)
    dates, previous, following = _days(view, anchor)
    start, _ = _local_bounds(dates[0], zone)
    _, end = _local_bounds(dates[-1], zone)
    calendars = selectors.calendars_at_a_glance(viewer=request.user, owners=people, start=start, end=end)
    now = timezone.now()
    today = now.astimezone(zone).date()
    columns = []
    rows = []
    if view == "day":
        columns = [_column(calendars.get(person.pk, []), anchor, zone, now, label=str(person), owner=person,
                           viewer=request.user) for person in people]
    else:
        rows = _team_rows(people, calendars, dates, zone, today)
    people_query = _query(people=[str(person.pk) for person in people])  # encoded once for every link

    def link(view: str, day: dt.date) -> str:
        return "&".join(filter(None, (_query(view=view, date=day.isoformat()), people_query)))

    return render(request, "calendarsync/team.html", {
        "view": view, "views": TEAM_VIEWS, "anchor": anchor, "today": today, "dates": dates,
        "week_head": [(link("day", d), f"{d:%a} {d.day}", d == today) for d in dates],
        "columns": columns, "rows": rows, "hours": _hours(),
        # The earliest start of those shown: a scheduler sees where everyone's day begins.
        "work_start_row": _work_start_row(people or [request.user], anchor, zone),  # type: ignore[list-item]
        "people": _people_choices(request.user, people), "chosen": people, "problems": problems,
        "zone": zone.key, "max_people": MAX_PEOPLE,
        "here": link(view, anchor), "earlier": link(view, previous), "later": link(view, following),
        "on_today": link(view, today), "other_view": {name: link(name, anchor) for name in TEAM_VIEWS},
        "find_a_time": "&".join(filter(None, (people_query, _query(date=anchor.isoformat())))),
    }, status=400 if problems else 200)


@login_required
@require_safe
def find_a_time(request: HttpRequest) -> HttpResponse:
    """The next slots of the chosen length in which every chosen person is free, within each one's
    working hours, from what each calendar shows (times only: no detail is read for this)."""
    zone = _zone(request)
    people, problems = _chosen_people(request)
    if not request.GET.getlist("people"):
        people = [request.user]  # type: ignore[list-item]
    try:
        minutes = int(request.GET.get("minutes", "60"))
    except ValueError:
        minutes = 0
    if request.GET and minutes not in LENGTHS:
        problems.append("Choose a length from the list.")
    minutes = minutes if minutes in LENGTHS else 60
    now = timezone.now()
    day = _anchor(request, zone)
    since = max(now, dt.datetime.combine(day, dt.time(), zone))
    until = dt.datetime.combine(since.astimezone(zone).date() + dt.timedelta(days=SEARCH_DAYS), dt.time(), zone)
    searched = bool(request.GET.getlist("people")) and not problems
    slots = []
    if searched:
        # A day either side so each person's all-day dates in their own zone are all read.
        calendars = selectors.visible_calendars(viewer=request.user, owners=people, times_only=True,
                                                start=since - dt.timedelta(days=1), end=until + dt.timedelta(days=1))
        slots = free_slots(people=[Person(hours=working_hours_for(person), taken=[
            TimeTaken(start=item.start, end=item.end, all_day=item.all_day, show_as=item.show_as)
            for item in calendars.get(person.pk, [])]) for person in people],
            length=dt.timedelta(minutes=minutes), since=since, until=until)
    chosen = [str(person.pk) for person in people]
    return render(request, "calendarsync/find_a_time.html", {
        "people": _people_choices(request.user, people), "chosen": people, "problems": problems,
        "lengths": [(n, _length_label(n), n == minutes) for n in LENGTHS], "minutes": minutes,
        "date": day, "since": since, "until": until - dt.timedelta(days=1), "searched": searched,
        "slots": [{"slot": slot, "team": _query(view="day", date=slot.start.astimezone(zone).date().isoformat(),
                                                people=chosen), "book": _booking(slot, zone, request.user, people)}
                  for slot in slots],
        "hours": [(person, working_hours_label(person)) for person in people],
        "zone": zone.key, "max_people": MAX_PEOPLE,
    }, status=400 if problems else 200)


def _booking(slot: Slot, zone: zoneinfo.ZoneInfo, viewer: Any, people: list[User]) -> str:
    """The New appointment form's query for a proposed slot: its times, the colleagues with Send
    invitations ticked, and a title naming them. "" for a slot that ends on another date than it
    starts on the viewer's clock (midnight included): the form's times are of one date."""
    if slot.start.astimezone(zone).date() != slot.end.astimezone(zone).date():
        return ""
    others = [str(person) for person in people if person.pk != viewer.pk]
    # ``people``: whom Find a time searched, to search again for them if the slot has gone by.
    params: dict[str, object] = {"start": slot.start.isoformat(), "end": slot.end.isoformat(),
                                 "people": [str(person.pk) for person in people]}
    if others:
        params["colleagues"] = [str(person.pk) for person in people if person.pk != viewer.pk]
        params["invite"] = "1"
        shown = others if len(others) <= BOOKING_NAMES else [*others[:BOOKING_NAMES - 1],
                                                              f"{len(others) - BOOKING_NAMES + 1} others"]
        names = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        params["title"] = f"Meeting with {names}"
    return _query(**params)


BOOKING_NAMES = 4  # a title names this many colleagues at most


def _length_label(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} minutes"
    label = f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{label} {rest} minutes" if rest else label
# -- the personal iCalendar link ----------------------------------------------------------------


@login_required
@require_safe_or_post
def calendar_link(request: HttpRequest) -> HttpResponse:
    """Make, reset or turn off the personal calendar link. A new link is shown on the page that
    answers the POST, once: only its digest is kept, and it never goes into a message or a log."""
    new_link = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action in ("make", "reset"):
            key = make_feed_link(owner=request.user)  # type: ignore[arg-type]
            new_link = request.build_absolute_uri(f"{reverse('calendarsync:personal_feed')}?{urlencode({'key': key})}")
        elif action == "off":
            revoke_feed_link(owner=request.user)  # type: ignore[arg-type]
            messages.success(request, "Your calendar link is off: apps that used it no longer get your calendar.")
            return redirect("calendarsync:calendar_link")
        else:
            return HttpResponse("Unknown action.", status=400)
    response = render(request, "calendarsync/calendar_link.html", {
        "has_link": selectors.has_feed_link(request.user), "new_link": new_link,
    })
    if new_link:
        response["Cache-Control"] = "no-store"
    return response


@require_safe
def personal_feed(request: HttpRequest) -> HttpResponse:
    """The owner's calendar as iCalendar, for the key of a live link; 404 for any other key. The
    key is in the query string, which the access logs leave out."""
    owner = selectors.feed_owner(request.GET.get("key", ""))
    if owner is None:
        raise Http404("No such calendar.")
    response = HttpResponse(feed_for(owner), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response
