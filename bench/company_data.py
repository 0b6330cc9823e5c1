"""A company the size of a real one, generated fast, for the page benchmark.

Rows are built in Python from one seeded random generator and streamed into PostgreSQL with COPY
(psycopg's copy protocol), one table at a time. Every row goes through its model's concrete
fields: a value the generator does not give is the field's own default, so a field added to a
model later is filled as the application would fill it.

What a company holds (``Size``): staff with mailbox connections (half of them with private
calendars shared with a few colleagues), contacts with one or two addresses, properties,
opportunities and work tickets, email activities (captured and sent, with their messages, on one
or two contacts, a fifth of them regarding a record), a few contacts holding a great many
activities, one user with a long Unmatched list and another with a long Outbox, appointments over
three years, and sync runs.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from django.db import connection, models
from django.utils import timezone

from accounts.models import Company, MailboxConnection, SyncRun, User
from activities.email_search import search_text
from activities.models import Activity, ActivityContact, EmailMessage
from calendarsync.models import LONG_APPOINTMENT, Appointment, AuditEntry
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from mailsync.models import OutboundEmail


@dataclass(frozen=True)
class Size:
    users: int = 200
    contacts: int = 50_000
    properties: int = 12_000
    opportunities: int = 12_000
    work_tickets: int = 12_000
    activities: int = 1_000_000
    heavy_contacts: int = 3
    heavy_activities: int = 20_000
    unmatched: int = 5_000
    outbound: int = 10_000
    appointments: int = 500_000
    sync_runs: int = 200_000

    def divided(self, by: int) -> Size:
        """The same company, ``by`` times smaller (the few heavy contacts stay a few)."""
        return replace(self, **{
            f.name: max(1 if f.name != "users" else 6, getattr(self, f.name) // by)
            for f in fields(self) if f.name != "heavy_contacts"
        })

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Picks:
    """The records and people each measured page is opened for (ids as strings)."""

    admin: str
    viewer: str
    private_colleague: str
    unmatched_user: str
    outbox_user: str
    contact: str
    heavy_contact: str
    property: str
    opportunity: str
    work_ticket: str
    email: str
    unmatched_email: str
    outbound: str
    appointment: str
    busy_appointment: str
    sync_run: str
    search_name: str
    search_address: str


FIRST_NAMES = (
    "Dana", "Marcus", "Sofia", "Tom", "Grace", "Henry", "Aisha", "Luis", "Emma", "Noah", "Olivia", "Liam", "Ava",
    "Ethan", "Mia", "Lucas", "Harper", "Mason", "Ella", "Logan", "Chloe", "Jacob", "Zoe", "Owen", "Lily", "Caleb",
    "Nora", "Isaac", "Ruby", "Wyatt", "Hazel", "Julian", "Ivy", "Levi", "Alice", "Miles", "Clara", "Ezra", "Stella",
    "Hugo", "Priya", "Ravi", "Mei", "Chen", "Yuki", "Kenji", "Fatima", "Omar", "Leila", "Diego", "Carmen", "Jorge",
    "Rosa", "Pedro", "Ana", "Sven", "Ingrid", "Kofi", "Amara", "Tariq",
)
LAST_NAMES = (
    "Whitfield", "Lee", "Ramirez", "Becker", "Kim", "Olsen", "Patel", "Moreno", "Smith", "Johnson", "Williams",
    "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
    "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris",
    "Sanchez", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins",
    "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo",
    "Sanders", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan",
    "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan",
)
CUSTOMER_KINDS = ("Residence", "HOA", "Apartments", "Dental", "Office Park", "Church", "Property Management",
                  "Family", "Medical Plaza", "Retail Center", "School", "Condos")
DOMAINS = tuple(f"{word}.example" for word in (
    "gmail-mail", "outlook-mail", "yahoo-mail", "icloud-mail", "hoa-mail", "pm-group", "dental-care", "church-net",
    "office-parks", "retail-co", "schools-isd", "condo-assoc", "medplaza", "family-mail", "business-mail",
))
STREETS = ("Cedar Bend", "Oak Ridge", "Lamar", "Research", "Lakeshore", "Manor", "Congress", "Burnet", "Guadalupe",
           "Riverside", "Barton Springs", "Mopac", "Anderson Mill", "Parmer", "Slaughter", "William Cannon",
           "Braker", "Rundberg", "Airport", "Cesar Chavez", "Pleasant Valley", "Bee Cave", "Spicewood", "Far West")
STREET_KINDS = ("Dr", "Rd", "Blvd", "Ln", "Pkwy", "St", "Ave", "Trl", "Way", "Ct")
CITIES = (("Austin", "TX", "787"), ("Round Rock", "TX", "786"), ("Cedar Park", "TX", "786"),
          ("Georgetown", "TX", "786"), ("Pflugerville", "TX", "786"), ("San Marcos", "TX", "786"),
          ("Kyle", "TX", "786"), ("Leander", "TX", "786"), ("Buda", "TX", "786"), ("Lakeway", "TX", "787"))
SERVICES = ("mulch", "irrigation", "spring cleanup", "leaf removal", "tree trimming", "sod install", "snow removal",
            "drip line", "seasonal color", "weekly mow", "hardscape", "drainage", "patio", "retaining wall",
            "fertilizer", "aeration", "pest control", "lighting", "fence repair", "gutter cleaning")
SUBJECTS = ("Question about the {s}", "Quote for {s} at {street}", "Re: {s} schedule", "Invoice {n} for {s}",
            "Re: Re: {s} at {street}", "Can we move the {s} to next week?", "Photos of the {s}",
            "Signed proposal: {s}", "{s} crew arriving tomorrow", "Fwd: {s} estimate", "Thanks for the {s}!",
            "Gate code for the {s} crew", "Follow-up on {s}", "Billing question ({s})")
SENTENCES = (
    "Hi, could we do the dark brown mulch instead of the red?",
    "The sprinkler heads by the clubhouse are spraying the sidewalk again.",
    "Please send the updated proposal when you get a chance.",
    "Our board meets on Thursday and will vote on the contract then.",
    "The crew did a great job last week, thank you.",
    "Can you come out on Monday morning instead of Friday?",
    "The gate code for the back lot is 4410.",
    "We noticed some brown patches near the north fence.",
    "Attached are photos of the drainage problem after the storm.",
    "Please call me before the crew arrives so I can move the cars.",
    "I have forwarded the invoice to our accounts payable team.",
    "The HOA would like an estimate for the entrance beds as well.",
    "Let's plan the seasonal color change for early October.",
    "Is the irrigation controller covered under the warranty?",
    "We'd like to add two more live oaks along the driveway.",
    "Thanks for the quick turnaround on the estimate.",
    "The tenants have asked for the leaf blowing to start after 8 AM.",
    "Could you confirm the start date for the patio install?",
    "Our facilities manager will meet the crew at the loading dock.",
    "Please note the dog in the backyard; the gate must stay closed.",
    "We are reviewing the snow and ice management bid this week.",
    "The last invoice listed three visits, but we only saw two.",
    "The retaining wall by the parking lot is leaning again.",
    "Everything looks wonderful, the neighbors keep asking who did it.",
)


def _body(rng: random.Random) -> str:
    return " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 7))) + "\n\nThanks,\n" + rng.choice(FIRST_NAMES)


class Copier:
    """COPY rows of one model: each row a dict by attribute name; missing values take the field's default."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        # Auto-incremented ids and generated columns are the database's to give.
        self.fields = [f for f in model._meta.concrete_fields
                       if not isinstance(f, models.AutoField | models.GeneratedField)]
        self.json = {f.attname for f in self.fields if isinstance(f, models.JSONField)}
        self.constant: dict[str, Any] = {}
        self.per_row: dict[str, Callable[[], Any]] = {}
        for f in self.fields:
            if f.has_default() and callable(f.default):
                self.per_row[f.attname] = f.get_default
            else:
                self.constant[f.attname] = f.get_default()

    def copy(self, rows: Iterable[dict[str, Any]]) -> int:
        if connection.vendor != "postgresql":
            return self._bulk_create(rows)  # the tests' small companies on SQLite
        table = connection.ops.quote_name(str(self.model._meta.db_table))
        columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in self.fields)
        connection.ensure_connection()
        count = 0
        with connection.connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(self._values(row))
                count += 1
        return count

    def _bulk_create(self, rows: Iterable[dict[str, Any]]) -> int:
        batch: list[models.Model] = []
        count = 0
        for row in rows:
            batch.append(self.model(**row))
            if len(batch) == 2000:
                count += len(self.model._default_manager.bulk_create(batch))
                batch = []
        return count + len(self.model._default_manager.bulk_create(batch))

    def _values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for f in self.fields:
            name = f.attname
            if name in row:
                value = row[name]
            elif name in self.per_row:
                value = self.per_row[name]()
            else:
                value = self.constant[name]
            if name in self.json:
                value = json.dumps(value)
            elif isinstance(value, models.Choices):
                value = value.value
            values.append(value)
        return tuple(values)


def copy_rows(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> int:
    return Copier(model).copy(rows)


@dataclass
class Generated:
    company: Company
    picks: Picks
    seconds: float


class CompanyGenerator:
    """Generates one company of the given size; ``log`` is told what is being made."""

    def __init__(self, *, name: str, size: Size, seed: int, log: Callable[[str], None]) -> None:
        self.name, self.size, self.log = name, size, log
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.now = timezone.now().replace(microsecond=0)
        self.slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20]

    def generate(self) -> Picks:
        self.company = Company.objects.create(name=self.name, time_zone="America/Chicago")
        self._people()
        self._contacts()
        self._records()
        self._activities()
        self._outbound()
        self._appointments()
        self._sync_runs()
        return self._picks()

    # -- people ---------------------------------------------------------------------------

    def _people(self) -> None:
        size, rng = self.size, self.rng
        self.users = User.objects.bulk_create([
            User(email=f"staff{n}@{self.slug}.bench.example", full_name=f"{rng.choice(FIRST_NAMES)} "
                 f"{rng.choice(LAST_NAMES)}", company=self.company, time_zone="America/Chicago",
                 role=User.Role.ADMIN if n == 0 else User.Role.STAFF, password="!")  # nobody signs in with a password
            for n in range(size.users)
        ])
        # 0: the company admin; 1: a staff member who views; 2: Unmatched; 3: Outbox; 4: a private calendar
        self.admin, self.viewer, self.unmatched_user, self.outbox_user, self.private_colleague = self.users[:5]
        connections = []
        for n, user in enumerate(self.users):
            private = n % 2 == 0 and n != 1
            connections.append(MailboxConnection(
                company=self.company, user=user, provider="google" if n % 3 else "microsoft",
                mailbox_address=user.email, state=MailboxConnection.State.CONNECTED, sync_email=True,
                sync_calendar=True, sync_aspire_folder=True,
                calendar_privacy=MailboxConnection.Privacy.PRIVATE if private else MailboxConnection.Privacy.PUBLIC,
                connected_at=self.now - dt.timedelta(days=900), last_sync_at=self.now - dt.timedelta(minutes=n % 60),
                next_sync_at=self.now + dt.timedelta(minutes=n % 60),
            ))
        self.connections = MailboxConnection.objects.bulk_create(connections)
        self.connection_of = {c.user_id: c for c in self.connections}
        through = MailboxConnection.shared_with.through
        shares: list[Any] = []
        for connection_ in self.connections:
            if connection_.calendar_privacy == MailboxConnection.Privacy.PRIVATE:
                # The viewer is never among them, so the private colleague's calendar is busy blocks to them.
                others = [u for u in self.users if u.pk not in (connection_.user_id, self.viewer.pk)]
                shares.extend(through(mailboxconnection_id=connection_.pk, user_id=u.pk)
                              for u in rng.sample(others, min(5, len(others))))
        through.objects.bulk_create(shares)

    # -- contacts and records ------------------------------------------------------------------

    def _contacts(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.contact_ids = [uuid.uuid4() for _ in range(size.contacts)]
        names = [(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)) for _ in self.contact_ids]
        self.log(f"    {size.contacts:,} contacts")
        copy_rows(Contact, (
            {"id": pk, "company_id": company_id, "created_at": self._past(1800), "first_name": first,
             "last_name": last, "company_name": f"{last} {rng.choice(CUSTOMER_KINDS)}" if rng.random() < 0.6 else "",
             "phone": f"512-555-{rng.randint(0, 9999):04d}"}
            for pk, (first, last) in zip(self.contact_ids, names, strict=True)
        ))
        self.addresses: dict[uuid.UUID, str] = {}

        def emails() -> Iterator[dict[str, Any]]:
            for n, (pk, (first, last)) in enumerate(zip(self.contact_ids, names, strict=True)):
                primary = f"{first}.{last}.{n}@{DOMAINS[n % len(DOMAINS)]}".lower()
                self.addresses[pk] = primary
                yield {"id": uuid.uuid4(), "company_id": company_id, "contact_id": pk, "address": primary,
                       "is_primary": True, "created_at": self.now}
                if rng.random() < 0.4:
                    yield {"id": uuid.uuid4(), "company_id": company_id, "contact_id": pk, "is_primary": False,
                           "address": f"{first[0]}{last}{n}@{rng.choice(DOMAINS)}".lower(), "created_at": self.now}

        copy_rows(ContactEmail, emails())

    def _records(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.log(f"    {size.properties:,} properties, {size.opportunities:,} opportunities, "
                 f"{size.work_tickets:,} work tickets")
        self.property_ids = [uuid.uuid4() for _ in range(size.properties)]

        def properties() -> Iterator[dict[str, Any]]:
            for pk in self.property_ids:
                city, state, zip_prefix = rng.choice(CITIES)
                street = f"{rng.randint(100, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
                yield {"id": pk, "company_id": company_id, "created_at": self._past(1800),
                       "name": f"{rng.choice(LAST_NAMES)} {rng.choice(CUSTOMER_KINDS)}", "street": street,
                       "city": city, "state": state, "postal_code": f"{zip_prefix}{rng.randint(0, 99):02d}"}

        copy_rows(Property, properties())
        copy_rows(Property.contacts.through, (
            {"property_id": pk, "contact_id": contact_id}
            for pk in self.property_ids
            for contact_id in set(rng.sample(self.contact_ids, rng.choice((1, 1, 2))))
        ))
        self.opportunity_ids = [uuid.uuid4() for _ in range(size.opportunities)]
        self.opportunity_property: dict[uuid.UUID, uuid.UUID | None] = {}
        stages = [choice.value for choice in Opportunity.Stage]

        def opportunities() -> Iterator[dict[str, Any]]:
            for pk in self.opportunity_ids:
                property_id = rng.choice(self.property_ids) if rng.random() < 0.9 else None
                self.opportunity_property[pk] = property_id
                yield {"id": pk, "company_id": company_id, "created_at": self._past(1500),
                       "name": f"{rng.choice(SERVICES).capitalize()} {rng.randint(2021, 2027)}",
                       "contact_id": rng.choice(self.contact_ids), "property_id": property_id,
                       "stage": rng.choice(stages)}

        copy_rows(Opportunity, opportunities())
        self.ticket_ids = [uuid.uuid4() for _ in range(size.work_tickets)]
        self.ticket_property = {pk: rng.choice(self.property_ids) for pk in self.ticket_ids}
        copy_rows(WorkTicket, (
            {"id": pk, "company_id": company_id, "created_at": self._past(1500), "number": 1000 + n,
             "property_id": self.ticket_property[pk],
             "description": f"{rng.choice(SERVICES).capitalize()}: {rng.choice(SENTENCES)}"}
            for n, pk in enumerate(self.ticket_ids)
        ))

    # -- activities and their email ----------------------------------------------------------------

    def _activities(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.log(f"    {size.activities:,} email activities, their messages and contact links")
        heavy = self.contact_ids[: size.heavy_contacts]
        ordinary = self.contact_ids[size.heavy_contacts:] or heavy
        staff = [u.pk for u in self.users if u.pk != self.unmatched_user.pk]
        bodies = [_body(rng) for _ in range(3000)]
        rows: list[tuple[uuid.UUID, dt.datetime, str, str, uuid.UUID, tuple[uuid.UUID, ...], dict[str, Any]]] = []
        heavy_total = size.heavy_contacts * size.heavy_activities
        for n in range(size.activities):
            pk = uuid.uuid4()
            occurred = self._past(1825)
            if n < size.unmatched:
                owner, origin = self.unmatched_user.pk, Activity.Origin.CAPTURED.value
                contacts: tuple[uuid.UUID, ...] = ()
            else:
                owner = rng.choice(staff)
                origin = (Activity.Origin.CAPTURED if rng.random() < 0.7 else Activity.Origin.SENT_FROM_ASPIRE).value
                if n < size.unmatched + heavy_total:
                    first = heavy[(n - size.unmatched) % len(heavy)]
                else:
                    first = rng.choice(ordinary)
                contacts = (first,) if rng.random() < 0.8 else tuple({first, rng.choice(ordinary)})
            regarding: dict[str, Any] = {}
            if contacts and rng.random() < 0.2:
                kind = rng.randrange(3)
                if kind == 0:
                    regarding["regarding_opportunity_id"] = rng.choice(self.opportunity_ids)
                elif kind == 1:
                    regarding["regarding_property_id"] = rng.choice(self.property_ids)
                else:
                    regarding["regarding_work_ticket_id"] = rng.choice(self.ticket_ids)
            rows.append((pk, occurred, origin, bodies[n % len(bodies)], owner, contacts, regarding))

        def subject(n: int) -> str:
            template = SUBJECTS[n % len(SUBJECTS)]
            return template.format(s=SERVICES[(n // 7) % len(SERVICES)], street=STREETS[n % len(STREETS)], n=n)

        copy_rows(Activity, (
            {"id": pk, "company_id": company_id, "created_at": occurred + dt.timedelta(seconds=5),
             "kind": Activity.Kind.EMAIL.value, "origin": origin, "occurred_at": occurred, "subject": subject(n),
             "body": body, "owner_id": owner, "filed": bool(contacts), **regarding}
            for n, (pk, occurred, origin, body, owner, contacts, regarding) in enumerate(rows)
        ))
        user_email = {u.pk: u.email for u in self.users}

        def messages() -> Iterator[dict[str, Any]]:
            for n, (pk, _occurred, origin, body, owner, contacts, _regarding) in enumerate(rows):
                outside = self.addresses[contacts[0]] if contacts else f"someone{n}@unknown-{n % 97}.example"
                sent = origin == Activity.Origin.SENT_FROM_ASPIRE
                sender, recipient = (user_email[owner], outside) if sent else (outside, user_email[owner])
                html = f"<p>{body.replace(chr(10), '<br>')}</p><p><b>{subject(n)}</b></p>" if n % 3 == 0 else ""
                yield {"activity_id": pk, "company_id": company_id, "dedupe_key": f"<{pk.hex}@{self.slug}.bench>",
                       "message_id": f"<{pk.hex}@{self.slug}.bench>", "from_name": sender.split("@")[0],
                       "from_address": sender, "to": [["", recipient]], "cc": [], "text_body": body,
                       "html_body": html, "size": len(body) + len(html) + 800,
                       "search_text": search_text(subject=subject(n), from_name=sender.split("@")[0],
                                                  from_address=sender, attachment_names=(), body=body)}

        copy_rows(EmailMessage, messages())
        # As activities.services.refresh_contact_links keeps them: each link has its activity's time.
        copy_rows(ActivityContact, (
            {"activity_id": pk, "contact_id": contact_id, "occurred_at": occurred}
            for pk, occurred, _origin, _body, _owner, contacts, _regarding in rows
            for contact_id in contacts
        ))
        self.activity_rows = rows

    # -- outbox, calendar, sync runs ---------------------------------------------------------------

    def _outbound(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.log(f"    {size.outbound:,} outbound messages for one user")
        connection_ = self.connection_of[self.outbox_user.pk]
        self.outbound_ids = [uuid.uuid4() for _ in range(size.outbound)]

        def outbound() -> Iterator[dict[str, Any]]:
            for n, pk in enumerate(self.outbound_ids):
                written = self._past(700)
                failed = n % 50 == 0
                contact_id = rng.choice(self.contact_ids)
                yield {"id": pk, "company_id": company_id, "created_at": written, "author_id": self.outbox_user.pk,
                       "connection_id": connection_.pk, "message_id": f"<out-{pk.hex}@{self.slug}.bench>",
                       "to": [self.addresses[contact_id]], "cc": [],
                       "subject": f"Proposal {n} for {rng.choice(SERVICES)}",
                       "body": rng.choice(SENTENCES), "attempts": 1, "not_before": written,
                       "state": (OutboundEmail.State.FAILED if failed else OutboundEmail.State.SENT).value,
                       "last_error": "The mailbox refused the message." if failed else "",
                       "sent_at": None if failed else written + dt.timedelta(seconds=30)}

        copy_rows(OutboundEmail, outbound())

    def _appointments(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.log(f"    {size.appointments:,} appointments")
        self.appointment_owner: dict[uuid.UUID, uuid.UUID] = {}

        def appointments() -> Iterator[dict[str, Any]]:
            for n in range(size.appointments):
                pk = uuid.uuid4()
                owner = self.users[n % len(self.users)]
                start = self.now + dt.timedelta(minutes=15 * rng.randint(-70_000, 35_000))  # two years back, one ahead
                kind = rng.random()
                if kind < 0.02:
                    start = dt.datetime.combine(start.date(), dt.time(), dt.UTC)
                    end, all_day = start + dt.timedelta(days=rng.randint(1, 3)), True
                elif kind < 0.03:
                    end, all_day = start + dt.timedelta(days=rng.randint(8, 30)), False
                else:
                    end, all_day = start + dt.timedelta(minutes=rng.choice((30, 60, 90, 120))), False
                if n < len(self.users) * 2:
                    self.appointment_owner[pk] = owner.pk
                made_here = n % 4 == 0
                yield {"id": pk, "company_id": company_id, "created_at": self.now, "updated_at": self.now,
                       "owner_id": owner.pk, "connection_id": self.connection_of[owner.pk].pk,
                       "title": f"{rng.choice(SERVICES).capitalize()} at {rng.choice(LAST_NAMES)} "
                                f"{rng.choice(CUSTOMER_KINDS)}",
                       "location": f"{rng.randint(100, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}",
                       "notes": rng.choice(SENTENCES), "attendees": [[rng.choice(FIRST_NAMES), "crew@bench.example"]],
                       "start": start, "end": end, "all_day": all_day, "is_long": end - start > LONG_APPOINTMENT,
                       "time_zone": "America/Chicago",
                       "origin": (Appointment.Origin.ASPIRE if made_here else Appointment.Origin.PROVIDER).value,
                       "provider_event_id": pk.hex, "sensitivity": "private" if kind > 0.9 else "normal"}

        copy_rows(Appointment, appointments())
        AuditEntry.objects.bulk_create([
            AuditEntry(company=self.company, owner=self.viewer, kind=AuditEntry.Kind.CONFLICT,
                       message="Changed in both places: the calendar app's version was kept.",
                       kept_version={"title": f"Visit {n}", "start": (self.now + dt.timedelta(days=n)).isoformat(),
                                     "end": (self.now + dt.timedelta(days=n, hours=1)).isoformat()})
            for n in range(12)
        ])

    def _sync_runs(self) -> None:
        size, rng, company_id = self.size, self.rng, self.company.pk
        self.log(f"    {size.sync_runs:,} sync runs")
        outcomes = [SyncRun.Outcome.SUCCEEDED.value] * 18 + [SyncRun.Outcome.PARTIAL.value,
                                                             SyncRun.Outcome.FAILED.value]

        def runs() -> Iterator[dict[str, Any]]:
            for n in range(size.sync_runs):
                started = self._past(120)
                outcome = rng.choice(outcomes)
                yield {"id": uuid.uuid4(), "company_id": company_id, "created_at": started,
                       "connection_id": self.connections[n % len(self.connections)].pk,
                       "kind": (SyncRun.Kind.MAIL if n % 2 else SyncRun.Kind.CALENDAR).value,
                       "trigger": SyncRun.Trigger.SCHEDULE.value, "started_at": started,
                       "finished_at": started + dt.timedelta(seconds=rng.randint(1, 40)), "outcome": outcome,
                       "items_seen": rng.randint(0, 30), "items_imported": rng.randint(0, 5), "provider_requests": 2,
                       "error": "The provider answered 503." if outcome == SyncRun.Outcome.FAILED else ""}

        copy_rows(SyncRun, runs())

    # -- what the pages are opened for --------------------------------------------------------------

    def _picks(self) -> Picks:
        rows = self.activity_rows
        per_contact: dict[uuid.UUID, int] = {}
        for *_, contacts, _regarding in rows:
            for contact_id in contacts:
                per_contact[contact_id] = per_contact.get(contact_id, 0) + 1
        heavy = set(self.contact_ids[: self.size.heavy_contacts])
        ordinary = [c for c, count in per_contact.items() if c not in heavy and 25 <= count <= 60]
        contact = ordinary[0] if ordinary else max((c for c in per_contact if c not in heavy),
                                                  key=lambda c: per_contact[c], default=self.contact_ids[-1])
        regarding_count: dict[str, dict[uuid.UUID, int]] = {"opportunity": {}, "property": {}, "ticket": {}}
        for *_, regarding in rows:
            for key, kind in (("regarding_opportunity_id", "opportunity"), ("regarding_property_id", "property"),
                              ("regarding_work_ticket_id", "ticket")):
                if key in regarding:
                    regarding_count[kind][regarding[key]] = regarding_count[kind].get(regarding[key], 0) + 1
        # A property's page rolls up its opportunities and work tickets too.
        rollup = dict(regarding_count["property"])
        for pk, count in regarding_count["opportunity"].items():
            if (prop := self.opportunity_property.get(pk)) is not None:
                rollup[prop] = rollup.get(prop, 0) + count
        for pk, count in regarding_count["ticket"].items():
            rollup[self.ticket_property[pk]] = rollup.get(self.ticket_property[pk], 0) + count
        busiest = sorted(rollup, key=lambda pk: rollup[pk])
        property_id = busiest[min(len(busiest) - 1, int(len(busiest) * 0.9))]  # a busy one, not the busiest
        opportunity = max(regarding_count["opportunity"], key=lambda pk: regarding_count["opportunity"][pk])
        ticket = max(regarding_count["ticket"], key=lambda pk: regarding_count["ticket"][pk])
        # An email with an HTML body on one contact (the admin's page shows one field per contact).
        email = next(pk for n, (pk, *_rest, contacts, _r) in enumerate(rows) if len(contacts) == 1 and n % 3 == 0)
        unmatched = rows[0][0]
        own = [pk for pk, owner in self.appointment_owner.items() if owner == self.viewer.pk]
        busy = [pk for pk, owner in self.appointment_owner.items() if owner == self.private_colleague.pk]
        contact_row = Contact.objects.get(pk=contact)
        return Picks(
            admin=str(self.admin.pk), viewer=str(self.viewer.pk), private_colleague=str(self.private_colleague.pk),
            unmatched_user=str(self.unmatched_user.pk), outbox_user=str(self.outbox_user.pk), contact=str(contact),
            heavy_contact=str(self.contact_ids[0]), property=str(property_id), opportunity=str(opportunity),
            work_ticket=str(ticket), email=str(email), unmatched_email=str(unmatched),
            outbound=str(self.outbound_ids[len(self.outbound_ids) // 2]), appointment=str(own[0]),
            busy_appointment=str(busy[0]), sync_run=str(SyncRun.objects.filter(company=self.company).values_list(
                "pk", flat=True).first()),
            search_name=contact_row.last_name[:5].lower(), search_address=self.addresses[contact],
        )

    def _past(self, days: int) -> dt.datetime:
        return self.now - dt.timedelta(seconds=self.rng.randint(0, days * 86_400))
