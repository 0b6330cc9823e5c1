"""Named actors for every test of access: Alice and Bob work at Greenleaf (Alice is its company
admin), Carol works at Summit, another company. Every record fixture belongs to Greenleaf, so a
test can always ask: and can Carol see it?"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from accounts.models import Company, User
from activities.models import Activity
from activities.services import create_activity
from crm.models import Contact, ContactEmail, Opportunity, Property, WorkTicket
from sandbox.runner import SandboxProcess, start_sandbox

PASSWORD = "correct horse battery staple"
# What makes a test slow: a real browser, a live server, a real worker process.
SLOW_FIXTURES = {"browser_page", "live_server"}
SLOW_MARKERS = {"browser", "worker", "slow"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow lane once, here, rather than on each test: ``make test-fast`` leaves it out."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SLOW_FIXTURES or {marker.name for marker in item.iter_markers()} & SLOW_MARKERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Django's default hasher spends most of a second per password by design; tests that create
    and sign in users do not need that protection."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def greenleaf(db: None) -> Company:
    return Company.objects.create(name="Greenleaf Landscaping", time_zone="America/Chicago")


@pytest.fixture
def summit(db: None) -> Company:
    return Company.objects.create(name="Summit Snow & Lawn", time_zone="America/Denver")


@pytest.fixture
def alice(greenleaf: Company) -> User:
    return User.objects.create_user(
        "alice@greenleaf.example", PASSWORD, full_name="Alice Admin", company=greenleaf, role=User.Role.ADMIN
    )


@pytest.fixture
def bob(greenleaf: Company) -> User:
    return User.objects.create_user("bob@greenleaf.example", PASSWORD, full_name="Bob Staff", company=greenleaf)


@pytest.fixture
def carol(summit: Company) -> User:
    return User.objects.create_user(
        "carol@summit.example", PASSWORD, full_name="Carol Admin", company=summit, role=User.Role.ADMIN
    )


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser("ops@aspire.example", PASSWORD)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def contact(greenleaf: Company) -> Contact:
    contact = Contact.objects.create(company=greenleaf, first_name="Dana", last_name="Whitfield", phone="512-555-0142")
    ContactEmail.objects.create(company=greenleaf, contact=contact, address="dana@example.com", is_primary=True)
    return contact


@pytest.fixture
def prop(greenleaf: Company, contact: Contact) -> Property:
    prop = Property.objects.create(
        company=greenleaf,
        name="Whitfield Residence",
        street="1402 Cedar Bend Dr",
        city="Austin",
        state="TX",
        postal_code="78758",
    )
    prop.contacts.add(contact)
    return prop


@pytest.fixture
def opportunity(greenleaf: Company, contact: Contact, prop: Property) -> Opportunity:
    return Opportunity.objects.create(company=greenleaf, name="Spring mulch", contact=contact, property=prop)


@pytest.fixture
def work_ticket(greenleaf: Company, prop: Property) -> WorkTicket:
    return WorkTicket.objects.create(company=greenleaf, number=1041, property=prop, description="Weekly mow")


@pytest.fixture
def activity(greenleaf: Company, bob: User, contact: Contact, opportunity: Opportunity) -> Activity:
    return create_activity(
        company=greenleaf,
        kind=Activity.Kind.EMAIL,
        origin=Activity.Origin.CAPTURED,
        subject="Mulch color",
        body="Dark brown please",
        owner=bob,
        contacts=[contact],
        regarding=opportunity,
    )


# -- a real browser: Debian's Chromium driven by Playwright --------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(live_server: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread; the live server's ORM calls are in others.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # The sandbox's pages use its own local CA; only this test browser skips checking it.
        context = browser.new_context(viewport={"width": 390, "height": 844}, ignore_https_errors=True)  # a phone
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


# -- the provider sandbox: one real process for the session, emptied before each test ------


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    handle = start_sandbox(ca_dir=Path(tmp_path_factory.mktemp("sandbox-ca")))
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    """The running sandbox, emptied before each test, and the providers' budgets this process
    keeps in Redis for it (accounts.quotas) with it: each test starts with a fresh world. A reset
    keeps the latency (a benchmark's network), so it is put back here too: a test that slowed
    every provider call must not slow every test after it."""
    sandbox_server.control("POST", "/reset")
    sandbox_server.control("POST", "/latency", json={"latency_ms": 0})
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("quota:*"):
            client.delete(key)
    return sandbox_server


# -- the product pointed at the sandbox ---------------------------------------------------

REDIRECT_URI = "http://testserver/settings/mailbox/callback/"


@pytest.fixture
def providers_on_sandbox(settings: Any, sandbox: SandboxProcess) -> SandboxProcess:
    """Only settings differ between the sandbox and the real providers."""
    base = sandbox.base_url
    settings.PROVIDER_CA_BUNDLE = str(sandbox.ca_path)
    settings.OAUTH_REDIRECT_URI = REDIRECT_URI
    settings.MICROSOFT_CLIENT_ID = "aspire-sync-test"
    settings.MICROSOFT_CLIENT_SECRET = "sandbox-secret"
    settings.MICROSOFT_AUTHORITY = f"{base}/organizations"
    settings.MICROSOFT_GRAPH_URL = f"{base}/v1.0"
    settings.GOOGLE_CLIENT_ID = "aspire-sync-test.apps.googleusercontent.com"
    settings.GOOGLE_CLIENT_SECRET = "sandbox-secret"
    settings.GOOGLE_AUTH_URI = f"{base}/o/oauth2/v2/auth"
    settings.GOOGLE_TOKEN_URI = f"{base}/token"
    settings.GOOGLE_REVOKE_URI = f"{base}/revoke"
    settings.GOOGLE_API_ENDPOINT = f"{base}/"
    return sandbox


def mailbox_account(sandbox: SandboxProcess, provider: str, email: str, **spec: Any) -> None:
    sandbox.control("POST", "/accounts", json={"provider": provider, "email": email, **spec})


