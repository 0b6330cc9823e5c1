"""Writes to appointments made in Aspire: one function per business action, each one transaction.

A change is saved with what the provider still has to be told (``Appointment.push``) and a sync of
the owner's calendar is queued after the commit; that run (calendarsync.sync) sends it, so changes
reach the provider in order, one run per connection at a time, and a failed send is retried.
"""

from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import Company, MailboxConnection, User
from accounts.tenancy import ensure_same_company
from activities.models import Activity
from activities.regarding import Regarding
from activities.services import create_activity, refresh_contact_links, set_regarding
from crm.models import Contact
from providers.calendar import EventDetails

from .models import Appointment, CalendarFeed, feed_key_digest, read_only_reason
from .selectors import colleagues_of, contacts_of

# Activity subjects are shown on contact timelines to every member of the company, whatever the
# calendar's privacy; the details stay on the appointment, behind the privacy rules.
ACTIVITY_SUBJECT = "Appointment"


class ReadOnlyAppointment(PermissionDenied):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AppointmentInput(EventDetails):
    """An appointment as entered in Aspire: the details the provider is sent (its contacts and
    colleagues are the attendees, invited when ``invite`` is chosen). Never recurring: repeating
    appointments are made in Outlook or Google Calendar (the help article's rule)."""

    def normalised(self) -> AppointmentInput:
        """All-day appointments become floating dates (midnight UTC); times must not run backwards."""
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"time_zone": "Unknown time zone."}) from exc
        start, end = self.start, self.end
        if self.all_day:
            zone = zoneinfo.ZoneInfo(self.time_zone)
            first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
            start = dt.datetime.combine(first, dt.time(), dt.UTC)
            end = dt.datetime.combine(max(last, first + dt.timedelta(days=1)), dt.time(), dt.UTC)
        if end < start:
            raise ValidationError({"end": "The appointment must end after it starts."})
        return replace(self, title=self.title.strip(), start=start, end=end, location=self.location.strip(),
                       notes=self.notes.strip(), show_as=self.show_as if self.show_as == "free" else "busy")


def _syncing_connection(owner: User) -> MailboxConnection | None:
    connection = MailboxConnection.objects.filter(user_id=owner.pk).first()
    if connection is not None and connection.is_connected and connection.sync_calendar:
        return connection
    return None


def _queue_sync(connection: MailboxConnection | None) -> None:
    if connection is None:
        return
    from .tasks import sync_calendar

    connection_id = str(connection.pk)
    transaction.on_commit(lambda: sync_calendar.apply_async((connection_id, "manual"), queue="calendar"))


APPLIED_FIELDS = ["title", "location", "notes", "start", "end", "time_zone", "all_day", "sensitivity", "show_as",
                  "invite", "attendees"]
NOBODY_TO_INVITE = ("No colleague is chosen and none of the chosen contacts has an email address, "
                    "so there is nobody to invite.")

# Exchange Online takes at most 500 attendees an event, and refuses the whole event past that; the
# same bound for Google (which documents none) keeps an appointment movable between the two.
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/event (attendees: at most 500)
MAX_INVITED = 500


def _apply(appointment: Appointment, data: AppointmentInput, contacts: list[Contact], colleagues: list[User]) -> None:
    appointment.title, appointment.location, appointment.notes = data.title, data.location, data.notes
    appointment.start, appointment.end = data.start, data.end
    appointment.time_zone, appointment.all_day = data.time_zone, data.all_day
    appointment.sensitivity = "private" if data.private else "normal"
    appointment.show_as = data.show_as
    appointment.invite = data.invite
    appointment.attendees = _attendees(appointment, contacts, colleagues) if data.invite else []


def _attendees(appointment: Appointment, contacts: list[Contact], colleagues: list[User]) -> list[list[str]]:
    """The invited contacts, each at their primary address, and colleagues at their account address
    (one entry per address); answers already synced are kept."""
    answered = {str(person[1]).lower(): str(person[2]) for person in appointment.attendees or [] if len(person) > 2}
    people = [(contact.name, contact.primary_email) for contact in contacts if contact.primary_email]
    people += [(colleague.full_name, colleague.email) for colleague in colleagues]
    invited: dict[str, list[str]] = {}
    for name, address in people:
        invited.setdefault(address.lower(), [name, address, answered.get(address.lower(), "")])
    if not invited:
        raise ValidationError({"invite": NOBODY_TO_INVITE})
    if len(invited) > MAX_INVITED:
        raise ValidationError({"invite": f"An appointment can invite at most {MAX_INVITED} people; "
                                         f"{len(invited)} are chosen."})
    return list(invited.values())


def _check_links(owner: User, contacts: list[Contact], regarding: Regarding | None,
                 colleagues: Sequence[User] = ()) -> None:
    """Contacts, colleagues and the Regarding of another company are refused, whatever the caller
    checked; so is the owner as their own colleague (the organiser is no attendee)."""
    for contact in contacts:
        ensure_same_company(owner.tenant_id, contact, field="contacts")
    for colleague in colleagues:
        ensure_same_company(owner.tenant_id, colleague, field="colleagues")
        if colleague.pk == owner.pk:
            raise ValidationError({"colleagues": "You organise this appointment: choose colleagues other than you."})
    if regarding is not None:
        ensure_same_company(owner.tenant_id, regarding, field="regarding")


@transaction.atomic
def create_appointment(
    *, owner: User, data: AppointmentInput, contacts: Iterable[Contact] = (), regarding: Regarding | None = None,
    colleagues: Iterable[User] = (),
) -> Appointment:
    """An appointment on the owner's calendar, sent to their provider when their calendar syncs.
    With contacts (or a Regarding) it is also an Activity on those contacts' timelines. Contacts and
    colleagues are invited only when ``data.invite`` is chosen."""
    data = data.normalised()
    connection = _syncing_connection(owner)
    appointment = Appointment(company_id=owner.tenant_id, owner=owner, connection=connection,
                              origin=Appointment.Origin.ASPIRE,
                              push=Appointment.Push.CREATE if connection else Appointment.Push.NONE)
    contacts, colleagues = list(contacts), list(colleagues)
    _check_links(owner, contacts, regarding, colleagues)
    _apply(appointment, data, contacts, colleagues)
    if contacts or regarding is not None:
        appointment.activity = create_activity(
            company=Company.objects.get(pk=owner.tenant_id), kind=Activity.Kind.APPOINTMENT, subject=ACTIVITY_SUBJECT,
            occurred_at=data.start, owner=owner, contacts=contacts, regarding=regarding,
        )
    appointment.save()
    appointment.colleagues.set(colleagues)
    _queue_sync(connection)
    return appointment


def _check_editable(appointment: Appointment, editor: User) -> None:
    if appointment.owner_id != editor.pk:
        raise ReadOnlyAppointment("Only the owner of this calendar can change its appointments.")
    reason = read_only_reason(origin=appointment.origin, in_series=bool(appointment.series_id))
    if reason:
        raise ReadOnlyAppointment(reason)


@transaction.atomic
def update_appointment(*, appointment: Appointment, editor: User, data: AppointmentInput,
                       contacts: Iterable[Contact] | None = None, regarding: Regarding | None = None,
                       colleagues: Iterable[User] | None = None) -> Appointment:
    """Change an appointment made in Aspire. Appointments made in the provider are read-only.
    With ``contacts`` (a list, maybe empty), its contacts and Regarding become those given;
    without, they stay as they were. Likewise its colleagues with ``colleagues``."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    _check_editable(appointment, editor)
    data = data.normalised()
    links_given = contacts is not None
    chosen = list(contacts) if contacts is not None else contacts_of(appointment.activity_id)
    team = list(colleagues) if colleagues is not None else colleagues_of(appointment.pk)
    _check_links(editor, chosen, regarding, team)
    _apply(appointment, data, chosen, team)
    if appointment.connection_id is None:
        appointment.connection = _syncing_connection(editor)
    if appointment.connection_id is not None and appointment.push != Appointment.Push.CREATE:
        appointment.push = Appointment.Push.UPDATE if appointment.provider_event_id else Appointment.Push.CREATE
    if links_given:
        _relink(appointment, editor, chosen, regarding, data.start)
    appointment.save(update_fields=[*APPLIED_FIELDS, "connection", "push", "activity", "updated_at"])
    if colleagues is not None:
        appointment.colleagues.set(team)
    if appointment.activity_id is not None:
        Activity.objects.filter(pk=appointment.activity_id).update(occurred_at=data.start)
        refresh_contact_links([appointment.activity_id])
    _queue_sync(appointment.connection)
    return appointment


def _relink(appointment: Appointment, owner: User, contacts: list[Contact], regarding: Regarding | None,
            start: dt.datetime) -> None:
    """Point the appointment's Activity at these contacts and this Regarding: made when it gets
    its first, deleted when it has none left (an appointment with nobody is no Activity)."""
    activity = Activity.objects.filter(pk=appointment.activity_id).first() if appointment.activity_id else None
    if not contacts and regarding is None:
        appointment.activity = None
        if activity is not None:
            activity.delete()
        return
    if activity is None:
        appointment.activity = create_activity(
            company=Company.objects.get(pk=owner.tenant_id), kind=Activity.Kind.APPOINTMENT, subject=ACTIVITY_SUBJECT,
            occurred_at=start, owner=owner, contacts=contacts, regarding=regarding,
        )
        return
    activity.contacts.set(contacts)
    set_regarding(activity=activity, regarding=regarding)


@transaction.atomic
def delete_appointment(*, appointment: Appointment, editor: User) -> None:
    """Delete an appointment made in Aspire, here and (at the next sync) at the provider."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    _check_editable(appointment, editor)
    sent_or_sending = appointment.provider_event_id or appointment.push == Appointment.Push.CREATE
    if sent_or_sending and appointment.connection_id is not None:
        # A create may be under way in a sync run right now; the run deletes what it made.
        # Kept as a tombstone, hidden everywhere, until the provider has deleted it too.
        appointment.push = Appointment.Push.DELETE
        appointment.save(update_fields=["push", "updated_at"])
        _queue_sync(appointment.connection)
        return
    remove_appointments(Appointment.objects.filter(pk=appointment.pk))


def remove_appointments(queryset: QuerySet[Appointment]) -> None:
    """Delete appointments and the Activities that put them on contacts' timelines."""
    activity_ids = [pk for pk in queryset.values_list("activity_id", flat=True) if pk]
    queryset.delete()
    if activity_ids:
        Activity.objects.filter(pk__in=activity_ids).delete()


# -- the personal iCalendar link -------------------------------------------------------------


@transaction.atomic
def make_feed_link(*, owner: User) -> str:
    """A new secret key for the owner's calendar link, replacing (so revoking) any earlier one.
    Returns the key; only its digest is stored."""
    key = secrets.token_urlsafe(32)
    CalendarFeed.objects.filter(owner=owner).delete()
    CalendarFeed.objects.create(company_id=owner.tenant_id, owner=owner, key_digest=feed_key_digest(key))
    return key


@transaction.atomic
def revoke_feed_link(*, owner: User) -> bool:
    """Turn the owner's calendar link off. False when there was none."""
    deleted, _ = CalendarFeed.objects.filter(owner=owner).delete()
    return bool(deleted)
