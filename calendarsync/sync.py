"""One calendar sync of one connection: send Aspire's changes, then read the provider's.

A run is leased (one per connection at a time) and recorded as a ``SyncRun`` of kind calendar.

Reading is incremental over a rolling window, 30 days back to a year ahead: the first run, and the
first run of each day, lists the whole window (which moves the window forward and brings series
occurrences that have come into range); the others follow the provider's cursor (Graph's delta
link, Google's sync token), so a run with nothing new makes one calendar request. An expired cursor
starts a full listing; appointments are upserted by the provider's event id, so nothing doubles.

Our own writes come back on the next read with the etag / changeKey the write returned, which is
stored with the appointment; a match is recognised and skipped, so nothing echoes.

Conflicts follow one rule: **the provider wins**. When an appointment changed in Aspire has also
changed at the provider since the last sync (the write's If-Match fails), or was deleted there, the
provider's version stays and the Aspire version is kept in an ``AuditEntry`` its owner sees.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import MailboxConnection, PushChannel, SyncRun
from accounts.provider_registry import get_provider
from accounts.push import ensure_channel
from accounts.runs import RunCounts, record_run, renew_run_lease
from activities.models import Activity
from providers.base import Grant
from providers.calendar import Attendee, CalendarChanges, CalendarEvent, CalendarProvider, EventDraft
from providers.errors import Conflict, NotFound, SyncStateExpired

from .models import LONG_APPOINTMENT, Appointment, AuditEntry, CalendarSyncState
from .services import remove_appointments

log = logging.getLogger(__name__)

WINDOW_BACK = dt.timedelta(days=30)
WINDOW_AHEAD = dt.timedelta(days=365)
ROLL_EVERY = dt.timedelta(days=1)
CHUNK = 500
CONFLICT_MESSAGE = ("“{title}” was changed in {provider} while it was also changed in Aspire. "
                    "The {provider} version was kept; your Aspire version is saved here.")
DELETED_MESSAGE = ("“{title}” was deleted in {provider} while it was being changed in Aspire. "
                   "It stays deleted; your Aspire version is saved here.")
UNDELETED_MESSAGE = ("“{title}” was changed in {provider} after you deleted it in Aspire, so it was kept. "
                     "Delete it again if it should go.")


# -- a run -------------------------------------------------------------------------------------


def run_calendar_sync(
    *, connection_id: uuid.UUID | str, owner: str, trigger: str = SyncRun.Trigger.SCHEDULE
) -> SyncRun | None:
    """Sync the connection's calendar both ways. None when it does not sync its calendar (any more).
    Raises RunBusy when another run holds it; provider errors after recording them on the run."""
    connection = MailboxConnection.objects.select_related("user").get(pk=connection_id)
    if not (connection.is_connected and connection.sync_calendar):
        return None
    return record_run(connection=connection, kind=SyncRun.Kind.CALENDAR, trigger=trigger,
                      state_model=CalendarSyncState, owner=owner,
                      work=lambda grant, counts, state: _sync(connection, grant, counts, owner))


def _sync(connection: MailboxConnection, grant: Grant, counts: RunCounts, owner: str) -> None:
    calendar = get_provider(connection.provider).calendar
    _push_pending(connection, calendar, grant, counts)
    renew_run_lease(CalendarSyncState, connection.pk, owner)
    _pull(connection, calendar, grant, counts)
    if Appointment.objects.filter(connection=connection, push=Appointment.Push.DELETE).exclude(
            provider_event_id="").exists():
        _push_pending(connection, calendar, grant, counts)  # events the read just found to be ours
    if ensure_channel(connection=connection, purpose=PushChannel.Purpose.CALENDAR, grant=grant):
        counts.requests += 1


def _provider_name(connection: MailboxConnection) -> str:
    return "Outlook" if connection.provider == MailboxConnection.Provider.MICROSOFT else "Google Calendar"


# -- Aspire → provider ---------------------------------------------------------------------------


def draft_of(appointment: Appointment) -> EventDraft:
    return EventDraft(
        title=appointment.title, start=appointment.start, end=appointment.end, time_zone=appointment.time_zone,
        all_day=appointment.all_day, location=appointment.location, notes=appointment.notes,
        private=appointment.is_private, show_as=appointment.show_as,
        attendees=tuple(Attendee(address=str(person[1]), name=str(person[0]))
                        for person in appointment.attendees or []),
        invite=appointment.invite,
    )


def snapshot(appointment: Appointment) -> dict[str, Any]:
    """The Aspire version of an appointment, as an audit entry keeps it."""
    return {
        "title": appointment.title, "location": appointment.location, "notes": appointment.notes,
        "start": appointment.start.isoformat(), "end": appointment.end.isoformat(),
        "time_zone": appointment.time_zone, "all_day": appointment.all_day, "private": appointment.is_private,
    }


def _push_pending(connection: MailboxConnection, calendar: CalendarProvider, grant: Grant,
                  counts: RunCounts) -> None:
    pending = Appointment.objects.filter(connection=connection).exclude(push=Appointment.Push.NONE).order_by(
        "updated_at")
    for appointment in pending:
        counts.requests += 1
        action = appointment.push
        try:
            if action == Appointment.Push.CREATE:
                event = calendar.create_event(grant, draft_of(appointment), client_id=appointment.pk.hex)
                _pushed(appointment, event, action)
            elif action == Appointment.Push.UPDATE:
                event = calendar.update_event(grant, appointment.provider_event_id, draft_of(appointment),
                                              etag=appointment.etag)
                _pushed(appointment, event, action)
            elif appointment.provider_event_id:
                calendar.delete_event(grant, appointment.provider_event_id, etag=appointment.etag,
                                      notify=appointment.invite)
                _pushed(appointment, None, action)
            else:
                # Deleted before we learned its event id: its create may still have reached the
                # provider (an answer lost). The tombstone stays, hidden, until a read brings that
                # event back under our client id (then it is deleted there too) or a full listing
                # shows the create never arrived.
                counts.requests -= 1
        except Conflict:
            _refused(appointment, action)
        except NotFound:
            _deleted_at_provider(connection, appointment, action)


@transaction.atomic
def _pushed(appointment: Appointment, event: CalendarEvent | None, action: str) -> None:
    """Record a write the provider accepted, unless the appointment changed again meanwhile (then
    its new change is sent on the next pass; the ids and etag are kept either way)."""
    current = Appointment.objects.select_for_update().filter(pk=appointment.pk).first()
    if current is None:
        return
    if event is None:
        if current.push == Appointment.Push.DELETE:
            remove_appointments(Appointment.objects.filter(pk=current.pk))
        return
    current.provider_event_id, current.etag, current.ical_uid = event.id, event.etag, event.ical_uid
    if current.updated_at == appointment.updated_at:
        current.push = Appointment.Push.NONE
    elif current.push == Appointment.Push.CREATE:
        current.push = Appointment.Push.UPDATE
    current.save(update_fields=["provider_event_id", "etag", "ical_uid", "push", "updated_at"])


def _audit(connection: MailboxConnection, appointment: Appointment, kind: str, message: str) -> None:
    AuditEntry.objects.create(
        company_id=appointment.company_id, owner_id=appointment.owner_id,
        appointment=None if kind == AuditEntry.Kind.DELETED_AT_PROVIDER else appointment, kind=kind,
        message=message.format(title=appointment.title or "An appointment", provider=_provider_name(connection)),
        kept_version=snapshot(appointment),
    )


def _refused(appointment: Appointment, action: str) -> None:
    """The provider refused our If-Match: the event changed (or went) there since our last sync.
    The read that follows in this run sees what happened and settles it (the provider wins)."""
    push = Appointment.Push.CONFLICT if action == Appointment.Push.UPDATE else action
    Appointment.objects.filter(pk=appointment.pk).update(push=push, etag="")


@transaction.atomic
def _deleted_at_provider(connection: MailboxConnection, appointment: Appointment, action: str) -> None:
    if action == Appointment.Push.UPDATE:
        _audit(connection, appointment, AuditEntry.Kind.DELETED_AT_PROVIDER, DELETED_MESSAGE)
    remove_appointments(Appointment.objects.filter(pk=appointment.pk))


# -- provider → Aspire ---------------------------------------------------------------------------


def _pull(connection: MailboxConnection, calendar: CalendarProvider, grant: Grant, counts: RunCounts) -> None:
    state = CalendarSyncState.objects.get(connection=connection)
    now = timezone.now()
    full = (not state.cursor or state.window_start is None or state.window_end is None
            or state.full_sync_at is None or now - state.full_sync_at >= ROLL_EVERY)
    window_start, window_end = (now - WINDOW_BACK, now + WINDOW_AHEAD) if full else (
        state.window_start, state.window_end)
    assert window_start is not None and window_end is not None
    try:
        changes = calendar.changes(grant, cursor="" if full else state.cursor,
                                   window_start=window_start, window_end=window_end)
    except SyncStateExpired:
        log.info("calendar cursor expired; listing the window again", extra={"connection": str(connection.pk)})
        counts.requests += 1
        window_start, window_end = now - WINDOW_BACK, now + WINDOW_AHEAD
        changes = calendar.changes(grant, cursor="", window_start=window_start, window_end=window_end)
    counts.requests += changes.requests
    changes = _settle_departures(connection, calendar, grant, changes, counts)
    apply_changes(connection, changes, window_start=window_start, window_end=window_end, counts=counts)
    state.cursor = changes.cursor
    update = ["cursor"]
    if changes.full:
        state.window_start, state.window_end, state.full_sync_at = window_start, window_end, now
        update += ["window_start", "window_end", "full_sync_at"]
    state.save(update_fields=update)


# How many appointments kept outside the window a full run asks the provider about, at most.
OUTSIDE_CHECKS = 200


def _settle_departures(connection: MailboxConnection, calendar: CalendarProvider, grant: Grant,
                       changes: CalendarChanges, counts: RunCounts) -> CalendarChanges:
    """Tell an event that left the window from one that was deleted. Graph's calendarView delta
    reports both alike (``changes.left``); asking for the event tells them apart, so a moved
    appointment is kept (marked outside the synced range) until the provider says it is gone.
    Single events are asked about, and so is an occurrence that left alone, the only one of its
    series in this listing: moved past the window's edge (an occurrence may move as far as its
    neighbours, a year for a yearly series), or deleted. Several of one series leaving together is
    the series' rule changing (shortened, deleted, moved to other days): they go without a request
    each. On a full listing, what is kept outside the window is asked about again, so one deleted
    at the provider since goes too."""
    left = list(changes.left)
    held = _departures_to_ask_about(connection, left) if left else set()
    asked = list(held)
    if changes.full:
        listed = {event.id for event in changes.changed}
        asked += [event_id for event_id in Appointment.objects.filter(
            connection=connection, outside_window=True).values_list("provider_event_id", flat=True)[:OUTSIDE_CHECKS]
            if event_id not in listed and event_id not in held]
    still_there: list[CalendarEvent] = []
    gone = [event_id for event_id in left if event_id not in held]
    for event_id in asked:
        counts.requests += 1
        event = calendar.get_event(grant, event_id)
        if event is None:
            gone.append(event_id)
        else:
            still_there.append(event)
    return dataclasses.replace(changes, changed=(*changes.changed, *still_there),
                               removed=tuple(dict.fromkeys([*changes.removed, *gone])), left=())


def _departures_to_ask_about(connection: MailboxConnection, left: list[str]) -> set[str]:
    """Of the events that left the window, those Aspire holds that are worth a request: single
    events, and occurrences that left alone (one of their series in this listing)."""
    # A calendarView delta lists occurrences and exceptions, and marks each that left @removed,
    # deleted or out of range alike. Reference: https://learn.microsoft.com/en-us/graph/delta-query-events
    # An occurrence moves no further than its neighbours (ErrorOccurrenceCrossingBoundary).
    # Reference: https://learn.microsoft.com/en-us/graph/api/event-update
    departed: list[tuple[str, str]] = []
    for chunk in _chunks(left):
        departed += Appointment.objects.filter(connection=connection, provider_event_id__in=chunk).values_list(
            "provider_event_id", "series_id")
    per_series = Counter(series_id for _, series_id in departed if series_id)
    return {event_id for event_id, series_id in departed if not series_id or per_series[series_id] == 1}


def _chunks(items: list[Any]) -> Any:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


@transaction.atomic
def apply_changes(connection: MailboxConnection, changes: CalendarChanges, *, window_start: dt.datetime,
                  window_end: dt.datetime, counts: RunCounts) -> None:
    """Upsert what changed and delete what went, with a number of queries that grows with the
    number of changes divided by 500, not with the number of appointments held."""
    counts.seen += len(changes.changed) + len(changes.removed) + len(changes.skipped)
    if changes.skipped:
        _note_skipped(connection, changes, counts)
    inside = {e.id: e for e in changes.changed if _in_window(e, window_start, window_end)}
    # An event moved out of the window is kept, marked, if Aspire holds it; one it never held stays out.
    outside = {e.id: e for e in changes.changed if e.id not in inside}
    gone = set(changes.removed) - set(inside) - set(outside)
    existing: dict[str, Appointment] = {}
    for chunk in _chunks(list(outside)):
        for held in Appointment.objects.select_for_update().filter(connection=connection,
                                                                   provider_event_id__in=chunk):
            existing[held.provider_event_id] = held
    outside = {event_id: event for event_id, event in outside.items() if event_id in existing}
    for chunk in _chunks(list(inside)):
        # Locked, so an edit saved in Aspire meanwhile waits rather than being overwritten unseen.
        for held in Appointment.objects.select_for_update().filter(connection=connection,
                                                                   provider_event_id__in=chunk):
            existing[held.provider_event_id] = held
    for event in _claim_our_events(connection, [e for e in inside.values() if e.id not in existing]):
        inside.pop(event.id)  # ours, made in Aspire: not a provider-made appointment
    to_create: list[Appointment] = []
    to_update: list[Appointment] = []
    for event in [*inside.values(), *outside.values()]:
        appointment = existing.get(event.id)
        moved_out = event.id in outside
        if appointment is not None and appointment.etag == event.etag and appointment.outside_window == moved_out:
            counts.already_there += 1  # unchanged, or our own write coming back
            continue
        if appointment is None:
            appointment = Appointment(company_id=connection.company_id, owner_id=connection.user_id,
                                      connection=connection, origin=Appointment.Origin.PROVIDER)
            to_create.append(appointment)
        else:
            if appointment.push in CHANGED_HERE:
                # Changed here and there since the last sync: the provider wins.
                message = UNDELETED_MESSAGE if appointment.push == Appointment.Push.DELETE else CONFLICT_MESSAGE
                _audit(connection, appointment, AuditEntry.Kind.CONFLICT, message)
            to_update.append(appointment)
        _copy_event(appointment, event)
        appointment.outside_window = moved_out
        counts.imported += 1
    for appointment in to_create + to_update:
        appointment.is_long = appointment.end - appointment.start > LONG_APPOINTMENT
    Appointment.objects.bulk_create(to_create, batch_size=CHUNK)
    Appointment.objects.bulk_update(to_update, UPSERT_FIELDS, batch_size=CHUNK)
    moved = [(a.activity_id, a.start) for a in to_update if a.activity_id]
    for activity_id, start in moved:
        Activity.objects.filter(pk=activity_id).update(occurred_at=start)
    gone_ids = list(gone)
    for chunk in _chunks(gone_ids):
        # A deleted series arrives (from Google) as its series id alone: its occurrences go too.
        _remove_deleted(connection, Appointment.objects.filter(
            Q(provider_event_id__in=chunk) | Q(series_id__in=chunk), connection=connection,
        ))
    if changes.full:
        # An event listed but unreadable this time is still there: what we hold of it stays.
        _remove_unlisted(connection, set(inside) | {item.id for item in changes.skipped}, window_start, window_end)
    # A refused change whose event the read did not bring back (nothing to compare): the provider's
    # version stands, and the Aspire one is kept for the owner.
    for unsettled in Appointment.objects.filter(connection=connection, push=Appointment.Push.CONFLICT):
        _audit(connection, unsettled, AuditEntry.Kind.CONFLICT, CONFLICT_MESSAGE)
        Appointment.objects.filter(pk=unsettled.pk).update(push=Appointment.Push.NONE)


def _claim_our_events(connection: MailboxConnection, unknown: list[CalendarEvent]) -> list[CalendarEvent]:
    """Events Aspire made whose create answer never came back, recognised by the client id the
    create carried (Graph's transactionId, Google's event id). Each is tied to its appointment
    instead of being imported as a second, read-only one: a pending create now knows its event,
    and one deleted in Aspire meanwhile is deleted at the provider by the next push."""
    by_client_id: dict[uuid.UUID, CalendarEvent] = {}
    for event in unknown:
        try:
            by_client_id[uuid.UUID(hex=event.client_id)] = event
        except ValueError:
            continue  # not a client id of ours
    claimed: list[CalendarEvent] = []
    for chunk in _chunks(list(by_client_id)):
        for appointment in Appointment.objects.select_for_update().filter(
                connection=connection, provider_event_id="", pk__in=chunk,
                push__in=(Appointment.Push.CREATE, Appointment.Push.DELETE)):
            event = by_client_id[appointment.pk]
            appointment.provider_event_id, appointment.etag = event.id, event.etag
            if appointment.push == Appointment.Push.CREATE:
                appointment.push = Appointment.Push.UPDATE  # Aspire's version is the one to keep
            appointment.save(update_fields=["provider_event_id", "etag", "push", "updated_at"])
            claimed.append(event)
    return claimed


def _note_skipped(connection: MailboxConnection, changes: CalendarChanges, counts: RunCounts) -> None:
    """Items the provider listed that could not be read as events: the rest of the calendar syncs,
    and the run says how many were left out and why (no titles: the run is shown to admins, and a
    private event's title is not theirs to see)."""
    skipped = changes.skipped
    counts.failed += len(skipped)
    reasons = Counter(item.reason for item in skipped)
    described = "; ".join(f"{reason} ({count})" if count > 1 else reason for reason, count in reasons.items())
    noun = "event" if len(skipped) == 1 else "events"
    counts.problems.append(f"{len(skipped)} {noun} from {_provider_name(connection)} could not be read and "
                           f"{'was' if len(skipped) == 1 else 'were'} left out: {described}.")
    log.warning("calendar items skipped", extra={"connection": str(connection.pk),
                                                 "items": [item.id for item in skipped][:50]})


def _in_window(event: CalendarEvent, window_start: dt.datetime, window_end: dt.datetime) -> bool:
    if event.start == event.end:  # an instant (an event that came without an end) still has a place
        return window_start <= event.start < window_end
    return event.end > window_start and event.start < window_end


CHANGED_HERE = (Appointment.Push.UPDATE, Appointment.Push.DELETE, Appointment.Push.CONFLICT)
UPSERT_FIELDS = ["title", "location", "notes", "attendees", "start", "end", "time_zone", "all_day", "is_long",
                 "sensitivity", "show_as", "provider_event_id", "ical_uid", "series_id", "original_start", "etag",
                 "problems", "push", "cancelled", "updated_at", "organizer_name", "organizer_address", "my_response",
                 "outside_window"]


def _copy_event(appointment: Appointment, event: CalendarEvent) -> None:
    appointment.title, appointment.location, appointment.notes = event.title, event.location, event.notes
    appointment.attendees = [[a.name, a.address, a.response] for a in event.attendees]
    organizer = event.organizer if not event.is_organizer else None
    appointment.organizer_name = organizer.name if organizer else ""
    appointment.organizer_address = organizer.address if organizer else ""
    appointment.my_response = event.my_response if organizer else ""
    appointment.start, appointment.end = event.start, event.end
    appointment.time_zone, appointment.all_day = event.time_zone, event.all_day
    appointment.sensitivity, appointment.show_as = event.sensitivity, event.show_as
    appointment.provider_event_id, appointment.ical_uid = event.id, event.ical_uid
    appointment.series_id, appointment.original_start = event.series_id, event.original_start
    appointment.etag, appointment.problems = event.etag, " ".join(event.problems)
    appointment.push, appointment.cancelled = Appointment.Push.NONE, False
    appointment.updated_at = timezone.now()


def _remove_unlisted(connection: MailboxConnection, listed: set[str], window_start: dt.datetime,
                     window_end: dt.datetime) -> None:
    """After a full listing: what we hold in the window that the provider no longer has was deleted
    there (while the cursor was lost, or while it was out of reach)."""
    held = Appointment.objects.filter(connection=connection, start__lt=window_end, end__gt=window_start).exclude(
        provider_event_id="").exclude(push=Appointment.Push.CREATE).values_list("pk", "provider_event_id")
    stale = [pk for pk, event_id in held if event_id not in listed]
    for chunk in _chunks(stale):
        _remove_deleted(connection, Appointment.objects.filter(pk__in=chunk))
    # Deleted in Aspire before their event id was known, and not in a complete listing of their
    # window: their create never reached the provider, so there is nothing left to delete.
    remove_appointments(Appointment.objects.filter(
        connection=connection, provider_event_id="", push=Appointment.Push.DELETE,
        start__lt=window_end, end__gt=window_start))


def _remove_deleted(connection: MailboxConnection, queryset: QuerySet[Appointment]) -> None:
    """Appointments whose events were deleted at the provider. One that was being changed in
    Aspire stays deleted (the provider wins) and the change is kept for its owner."""
    going = queryset.exclude(push=Appointment.Push.CREATE)
    for edited in going.filter(push__in=(Appointment.Push.UPDATE, Appointment.Push.CONFLICT)):
        _audit(connection, edited, AuditEntry.Kind.DELETED_AT_PROVIDER, DELETED_MESSAGE)
    remove_appointments(going)
