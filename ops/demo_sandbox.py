"""The demo's provider accounts: mailboxes and calendars in the local sandbox for the demo staff,
with mail in their inboxes and events in their calendars, plus a few mailboxes of the kinds
Aspire refuses, so a newcomer can see each refusal."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import requests

MFA_CODE = "123456"
PUBSUB_TOPIC = "projects/aspire-demo/topics/gmail"
# The push subscription's service account: the sandbox signs each Gmail push as it, as Pub/Sub does.
PUBSUB_SERVICE_ACCOUNT = "gmail-push@aspire-demo.iam.gserviceaccount.com"
SANDBOX_PASSWORD = "password"

# (provider, email, display name, kind, MFA, alias_of)
ACCOUNTS = [
    ("microsoft", "maria@greenleaf.example", "Maria Alvarez", "user", True, None),
    ("microsoft", "priya@greenleaf.example", "Priya Shah", "user", False, None),
    ("google", "james@greenleaf.example", "James Carter", "user", True, None),
    ("microsoft", "office@greenleaf.example", "Greenleaf Office", "shared", False, None),
    ("microsoft", "crews@greenleaf.example", "All Crews", "distribution_list", False, None),
    ("google", "jim@greenleaf.example", "James Carter", "alias", False, "james@greenleaf.example"),
    ("microsoft", "alex@summitlawn.example", "Alex Novak", "user", False, None),
]

# (from name, from address, subject, body) for each user's inbox
INBOX = [
    (
        "Dana Whitfield",
        "dana.whitfield@example.com",
        "Mulch delivery this Friday?",
        "Hi! Will the crew be able to spread the mulch this Friday? Thanks, Dana",
    ),
    (
        "Marcus Lee",
        "marcus.lee@oakridgehoa.example",
        "Clubhouse sprinklers again",
        "Two heads by the clubhouse are spraying the sidewalk again. Can someone take a look?",
    ),
    (
        "Sofia Ramirez",
        "sofia@ramirezdental.example",
        "Thank you!",
        "The new drip line looks great. Please send the final invoice when ready.",
    ),
    (
        "Unknown Sender",
        "newlead@example.net",
        "Quote for lawn care",
        "Hello, I found you online. Do you service the Round Rock area? Looking for weekly mowing.",
    ),
]


def _message(sender: tuple[str, str], to: str, subject: str, body: str, when: dt.datetime) -> str:
    message = EmailMessage()
    message["From"] = f"{sender[0]} <{sender[1]}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=sender[1].split("@")[1])
    message.set_content(body)
    return message.as_string()


def _events(tz: str, today: dt.date) -> list[dict[str, Any]]:
    monday = today - dt.timedelta(days=today.weekday())

    def at(day: dt.date, hour: int, minute: int = 0) -> str:
        return dt.datetime.combine(day, dt.time(hour, minute)).isoformat()

    return [
        {
            "subject": "Crew planning meeting",
            "location": "Greenleaf yard",
            "time_zone": tz,
            "start": at(monday, 7),
            "end": at(monday, 7, 30),
            "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=26",
            "body": "Weekly crew assignments and equipment check.",
        },
        {
            "subject": "Site walk: Oak Ridge Commons",
            "location": "900 Oak Ridge Pkwy, Austin",
            "time_zone": tz,
            "start": at(monday + dt.timedelta(days=2), 10),
            "end": at(monday + dt.timedelta(days=2), 11),
            "attendees": ["marcus.lee@oakridgehoa.example"],
        },
        {
            "subject": "Doctor appointment",
            "location": "Downtown clinic",
            "time_zone": tz,
            "private": True,
            "start": at(monday + dt.timedelta(days=3), 14),
            "end": at(monday + dt.timedelta(days=3), 15),
            "body": "Annual check-up.",
        },
    ]


def seed_sandbox(*, base_url: str, ca_path: Path, app_url: str, time_zone: str = "America/Chicago") -> int:
    """Create the demo accounts that don't exist yet; returns how many were created. Gmail's
    notifications for the demo topic are pushed to the app, as a Pub/Sub push subscription would."""
    session = requests.Session()
    session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment must not override verify
    session.verify = str(ca_path)

    def control(method: str, path: str, **kwargs: Any) -> Any:
        response = session.request(method, f"{base_url}/_sandbox{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    try:
        control("PUT", f"/pubsub/topics/{PUBSUB_TOPIC}",
                json={"push_endpoint": f"{app_url}/hooks/google/pubsub/",
                      "service_account_email": PUBSUB_SERVICE_ACCOUNT})
        existing = {(a["provider"], a["email"]) for a in control("GET", "/accounts")["accounts"]}
        now = dt.datetime.now(zoneinfo.ZoneInfo(time_zone))
        created = 0
        for provider, email, name, kind, mfa, alias_of in ACCOUNTS:
            if (provider, email) in existing:
                continue
            spec: dict[str, Any] = {
                "provider": provider,
                "email": email,
                "display_name": name,
                "kind": kind,
                "mfa": mfa,
                "mfa_code": MFA_CODE,
                "password": SANDBOX_PASSWORD,
            }
            if alias_of:
                spec["alias_of"] = alias_of
            control("POST", "/accounts", json=spec)
            created += 1
            if kind != "user":
                continue
            inbox = "Inbox" if provider == "microsoft" else "INBOX"
            for n, (sender_name, sender, subject, body) in enumerate(INBOX):
                raw = _message((sender_name, sender), f"{name} <{email}>", subject, body,
                               now - dt.timedelta(hours=n * 5))
                control("POST", f"/accounts/{provider}/{email}/messages", json={"folder": inbox, "raw": raw})
            for event in _events(time_zone, now.date()):
                control("POST", f"/accounts/{provider}/{email}/events", json=event)
        return created
    finally:
        # An idle keep-alive connection left open would hold up the sandbox's own stop.
        session.close()


def mailbox_pages(base_url: str) -> list[str]:
    """The sandbox's web page of each demo user's mailbox (its Inbox, with Move to Aspire)."""
    return [f"{base_url}/_sandbox/mail/{provider}/{email}" for provider, email, _, kind, _, _ in ACCOUNTS
            if kind == "user"]


def sandbox_environment(*, base_url: str, ca_path: Path, app_url: str) -> dict[str, str]:
    """Settings that point the product at the sandbox (only settings differ, no code path)."""
    return {
        "PROVIDER_CA_BUNDLE": str(ca_path),
        "OAUTH_REDIRECT_URI": f"{app_url}/settings/mailbox/callback/",
        "MICROSOFT_CLIENT_ID": "aspire-sync-demo",
        "MICROSOFT_CLIENT_SECRET": "sandbox-secret",
        "MICROSOFT_AUTHORITY": f"{base_url}/organizations",
        "MICROSOFT_GRAPH_URL": f"{base_url}/v1.0",
        "GOOGLE_CLIENT_ID": "aspire-sync-demo.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "sandbox-secret",
        "GOOGLE_AUTH_URI": f"{base_url}/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URI": f"{base_url}/token",
        "GOOGLE_REVOKE_URI": f"{base_url}/revoke",
        "GOOGLE_API_ENDPOINT": f"{base_url}/",
        "PUSH_BASE_URL": app_url,
        "GOOGLE_PUBSUB_TOPIC": PUBSUB_TOPIC,
        "GOOGLE_PUBSUB_SERVICE_ACCOUNT": PUBSUB_SERVICE_ACCOUNT,
        "GOOGLE_PUBSUB_CERTS_URL": f"{base_url}/oauth2/v1/certs",
    }
