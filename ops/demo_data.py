"""Demo data a newcomer can click through: a landscaping company with staff, customers,
properties, opportunities, work tickets and their history, and a second company to show
that tenants never see each other."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Company, MailboxConnection, User
from activities.models import Activity
from activities.services import create_activity
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from providers.errors import AuthRevoked

DEMO_PASSWORD = "aspire-demo"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    company: str
    full_name: str
    time_zone: str = ""


# The demo's users, and what `make demo` prints of them.
DEMO_LOGINS = (
    DemoLogin("maria@greenleaf.example", User.Role.ADMIN.label, "Greenleaf Landscaping", "Maria Alvarez",
              "America/Chicago"),
    DemoLogin("james@greenleaf.example", User.Role.STAFF.label, "Greenleaf Landscaping", "James Carter",
              "America/Chicago"),
    DemoLogin("priya@greenleaf.example", User.Role.STAFF.label, "Greenleaf Landscaping", "Priya Shah",
              "America/New_York"),
    DemoLogin("alex@summitlawn.example", User.Role.ADMIN.label, "Summit Snow & Lawn", "Alex Novak", "America/Denver"),
    DemoLogin("ops@aspire.example", "Operator (all companies, admin only)", "—", "Aspire Operations"),
)

GREENLEAF_CONTACTS = [
    (
        "Dana",
        "Whitfield",
        "Whitfield Family",
        "512-555-0142",
        ["dana.whitfield@example.com", "dana@whitfieldfamily.example"],
    ),
    ("Marcus", "Lee", "Oak Ridge HOA", "512-555-0177", ["marcus.lee@oakridgehoa.example"]),
    ("Sofia", "Ramirez", "Ramirez Dental", "512-555-0190", ["sofia@ramirezdental.example"]),
    ("Tom", "Becker", "Becker Office Park", "512-555-0111", ["tbecker@beckerpark.example"]),
    ("Grace", "Kim", "", "512-555-0123", ["grace.kim@example.com"]),
    ("Henry", "Olsen", "Lakeside Church", "512-555-0168", ["facilities@lakesidechurch.example"]),
    ("Aisha", "Patel", "Patel Residence", "512-555-0155", ["aisha.patel@example.com"]),
    ("Luis", "Moreno", "Moreno Apartments", "512-555-0104", ["luis@morenoapts.example", "office@morenoapts.example"]),
]

GREENLEAF_PROPERTIES = [
    ("Whitfield Residence", "1402 Cedar Bend Dr", "Austin", "TX", "78758", [0]),
    ("Oak Ridge Commons", "900 Oak Ridge Pkwy", "Austin", "TX", "78749", [1]),
    ("Ramirez Dental Clinic", "2210 S Lamar Blvd", "Austin", "TX", "78704", [2]),
    ("Becker Office Park", "5000 Research Blvd", "Austin", "TX", "78759", [3]),
    ("Lakeside Church Grounds", "77 Lakeshore Dr", "Round Rock", "TX", "78664", [5]),
    ("Moreno Apartments", "3100 Manor Rd", "Austin", "TX", "78723", [7]),
]

GREENLEAF_OPPORTUNITIES = [
    ("Spring mulch and bed refresh", 0, 0, Opportunity.Stage.PROPOSED),
    ("HOA annual maintenance contract", 1, 1, Opportunity.Stage.ESTIMATING),
    ("Irrigation upgrade", 2, 2, Opportunity.Stage.WON),
    ("Snow and ice management 2026-27", 3, 3, Opportunity.Stage.LEAD),
    ("Courtyard patio install", 7, 5, Opportunity.Stage.PROPOSED),
]

GREENLEAF_TICKETS = [
    (1041, 0, "Weekly mow, edge and blow"),
    (1042, 1, "Replace two broken sprinkler heads by the clubhouse"),
    (1043, 2, "Install drip line along the front beds"),
    (1044, 3, "Leaf cleanup, parking lot islands"),
    (1045, 4, "Trim live oaks away from the roof line"),
    (1046, 5, "Seasonal color: pansies at the entrance"),
]

# (days ago, hour, kind, origin, subject, body, contact indexes, regarding: ("opp"|"prop"|"ticket", index) or None)
ActivityRow = tuple[int, int, str, str, str, str, list[int], tuple[str, int] | None]
GREENLEAF_ACTIVITIES: list[ActivityRow] = [
    (
        1,
        9,
        "email",
        "captured",
        "Question about the mulch color",
        "Hi, could we do the dark brown mulch instead of the red? Thanks, Dana",
        [0],
        ("opp", 0),
    ),
    (
        1,
        11,
        "email",
        "sent",
        "Re: Question about the mulch color",
        "Absolutely, dark brown is no problem. I've updated the proposal.",
        [0],
        ("opp", 0),
    ),
    (
        2,
        14,
        "appointment",
        "aspire",
        "Site walk: Oak Ridge Commons",
        "Walk the common areas with Marcus to scope the annual contract.",
        [1],
        ("opp", 1),
    ),
    (3, 10, "note", "aspire", "Gate code", "Gate code for the back lot is 4410.", [1], ("prop", 1)),
    (
        4,
        16,
        "email",
        "captured",
        "Sprinkler heads leaking by the clubhouse",
        "Two heads are spraying the sidewalk again.",
        [1],
        ("ticket", 1),
    ),
    (
        5,
        8,
        "email",
        "sent",
        "Irrigation upgrade: signed proposal",
        "Thank you for signing! We'll schedule the install for next week.",
        [2],
        ("opp", 2),
    ),
    (6, 13, "appointment", "aspire", "Drip line install", "Crew of three, bring the trencher.", [2], ("ticket", 2)),
    (
        7,
        9,
        "email",
        "captured",
        "Snow removal pricing for next winter?",
        "Can you send pricing for plowing and salting the lots?",
        [3],
        ("opp", 3),
    ),
    (8, 15, "note", "aspire", "Prefers phone calls", "Grace prefers a call over email for scheduling.", [4], None),
    (
        9,
        11,
        "email",
        "captured",
        "Oak trimming near the sanctuary",
        "The branches are touching the roof on the east side.",
        [5],
        ("ticket", 4),
    ),
    (
        10,
        10,
        "email",
        "sent",
        "Courtyard patio proposal",
        "Attached is our proposal for the courtyard patio.",
        [7],
        ("opp", 4),
    ),
    (12, 9, "email", "captured", "Invoice #88231", "Paid by check today. -- Luis", [7], None),
    (14, 16, "appointment", "aspire", "Estimate: Patel front yard", "Measure beds and take photos.", [6], None),
]
# Pad the busiest contact's timeline past one page, so paging can be tried.
GREENLEAF_ACTIVITIES += [
    (
        15 + n,
        9 + n % 8,
        "email",
        "captured" if n % 2 else "sent",
        f"Weekly service report #{n + 1}",
        "Mowed, edged, blew off walks. All gates closed.",
        [0],
        ("ticket", 0),
    )
    for n in range(22)
]

SUMMIT_CONTACTS = [
    ("Rita", "Vasquez", "Pine Valley Mall", "303-555-0133", ["rita@pinevalleymall.example"]),
    ("Owen", "Brooks", "", "303-555-0188", ["owen.brooks@example.com"]),
]


def _contacts(company: Company, rows: list[tuple[str, str, str, str, list[str]]]) -> list[Contact]:
    contacts = []
    for first, last, org, phone, emails in rows:
        contact = Contact.objects.create(
            company=company, first_name=first, last_name=last, company_name=org, phone=phone
        )
        for n, address in enumerate(emails):
            ContactEmail.objects.create(company=company, contact=contact, address=address, is_primary=n == 0)
        contacts.append(contact)
    return contacts


def _staff(company: Company) -> dict[str, User]:
    """The company's users of ``DEMO_LOGINS``, by address."""
    return {
        login.email: User.objects.create_user(
            login.email,
            DEMO_PASSWORD,
            full_name=login.full_name,
            company=company,
            role=User.Role.ADMIN if login.role == User.Role.ADMIN.label else User.Role.STAFF,
            time_zone=login.time_zone,
        )
        for login in DEMO_LOGINS
        if login.company == company.name
    }


@transaction.atomic
def load_demo_data() -> bool:
    """Create the demo companies once. Returns False when they already exist."""
    if Company.objects.filter(name="Greenleaf Landscaping").exists():
        return False

    greenleaf = Company.objects.create(name="Greenleaf Landscaping", time_zone="America/Chicago")
    greenleaf_staff = _staff(greenleaf)
    maria, james = greenleaf_staff["maria@greenleaf.example"], greenleaf_staff["james@greenleaf.example"]
    # A shorter week than the house's, so Find a time shows someone's own working hours.
    priya = greenleaf_staff["priya@greenleaf.example"]
    priya.work_days, priya.work_start, priya.work_end = [0, 1, 2, 3], dt.time(9), dt.time(15)
    priya.save(update_fields=["work_days", "work_start", "work_end"])
    # Priya's mailbox lost its grant (as after a password change), so the demo shows what a newcomer
    # reads about: her banner, Maria's Sync health with Ask to reconnect, and Reconnect in her Settings.
    MailboxConnection.objects.create(
        user=priya,
        company=greenleaf,
        provider="microsoft",
        mailbox_address=priya.email,
        display_name=priya.full_name,
        state=MailboxConnection.State.NEEDS_SIGNIN,
        sync_email=True,
        sync_aspire_folder=True,
        sync_calendar=True,
        last_error=AuthRevoked.default_message,
        last_error_at=timezone.now(),
    )

    contacts = _contacts(greenleaf, GREENLEAF_CONTACTS)
    properties = []
    for name, street, city, state, postal, contact_indexes in GREENLEAF_PROPERTIES:
        prop = Property.objects.create(
            company=greenleaf, name=name, street=street, city=city, state=state, postal_code=postal
        )
        prop.contacts.add(*(contacts[i] for i in contact_indexes))
        properties.append(prop)
    opportunities = [
        Opportunity.objects.create(
            company=greenleaf, name=name, contact=contacts[c], property=properties[p], stage=stage
        )
        for name, c, p, stage in GREENLEAF_OPPORTUNITIES
    ]
    tickets = [
        WorkTicket.objects.create(company=greenleaf, number=number, property=properties[p], description=text)
        for number, p, text in GREENLEAF_TICKETS
    ]
    regarding_lists: dict[str, list[Any]] = {"opp": opportunities, "prop": properties, "ticket": tickets}

    # Demo history happens during Greenleaf's working hours, in its own time zone.
    now = timezone.now().astimezone(zoneinfo.ZoneInfo(greenleaf.time_zone))
    for days, hour, kind, origin, subject, body, contact_indexes, regarding in GREENLEAF_ACTIVITIES:
        when = (now - dt.timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
        create_activity(
            company=greenleaf,
            kind=kind,
            origin=origin,
            subject=subject,
            body=body,
            occurred_at=when,
            owner=maria if origin == Activity.Origin.SENT_FROM_ASPIRE else james,
            contacts=[contacts[i] for i in contact_indexes],
            regarding=regarding_lists[regarding[0]][regarding[1]] if regarding else None,
        )

    summit = Company.objects.create(name="Summit Snow & Lawn", time_zone="America/Denver")
    alex = _staff(summit)["alex@summitlawn.example"]
    summit_contacts = _contacts(summit, SUMMIT_CONTACTS)
    mall = Property.objects.create(
        company=summit,
        name="Pine Valley Mall",
        street="8000 Pine Valley Rd",
        city="Denver",
        state="CO",
        postal_code="80202",
    )
    mall.contacts.add(summit_contacts[0])
    create_activity(
        company=summit,
        kind="email",
        origin="captured",
        subject="Plowing schedule for the holidays",
        body="Please plow before 6am on Black Friday.",
        owner=alex,
        contacts=[summit_contacts[0]],
        regarding=mall,
        occurred_at=now - dt.timedelta(days=2),
    )

    operator = DEMO_LOGINS[-1]
    User.objects.create_superuser(operator.email, DEMO_PASSWORD, full_name=operator.full_name)
    return True
