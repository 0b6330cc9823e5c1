"""Acceptance check of the provider sandbox through the providers' own client libraries.

Drives the sandbox the way the product and a browser would: msal and plain HTTP for the Microsoft
identity platform and Graph; google-auth-oauthlib, google-auth and google-api-python-client for
Google OAuth, Gmail and Calendar. Every expectation comes from the sandbox's documents
(sandbox/README.md, sandbox/microsoft/API.md, sandbox/google/API.md) and from the real services'
public documentation.

    python scripts/sandbox_acceptance.py                      # starts and stops its own sandbox
    python scripts/sandbox_acceptance.py --base-url https://localhost:8025 --ca .sandbox/ca.pem

Prints one line per check ("ok  <check>" or "FAIL <check>: <reason>") and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
import tempfile
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import google.auth.exceptions
import google.auth.transport.requests
import google_auth_httplib2
import httplib2
import msal
import requests
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

TIMEOUT = 30
CLIENT_SECRET = "sandbox-secret"
PASSWORD = "password"
MFA_CODE = "123456"
WRONG_CODE = "000000"
REDIRECT_URI = "http://localhost:8765/oauth/callback"
MS_CLIENT_ID = "3f1c9a52-7d2b-4e61-9a0c-5b8e2d4f6a17"
MS_SCOPES = ["User.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite"]
GOOGLE_CLIENT_ID = "sandbox-acceptance.apps.googleusercontent.com"
GOOGLE_SCOPES = ["https://mail.google.com/", "https://www.googleapis.com/auth/calendar"]
WINDOW_START = "2026-11-30T00:00:00Z"
WINDOW_END = "2027-01-31T00:00:00Z"


class CheckError(Exception):
    """A check's expectation was not met."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckError(message)


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    passed: int = 0

    @contextlib.contextmanager
    def check(self, name: str, *, fatal: bool = True) -> Iterator[None]:
        """Run one check; a fatal failure ends the section it belongs to."""
        try:
            yield
        except SectionAborted:
            raise
        except Exception as exc:
            self.failures.append(name)
            print(f"FAIL {name}: {describe(exc)}", flush=True)
            if fatal:
                raise SectionAborted(name) from exc
        else:
            self.passed += 1
            print(f"ok  {name}", flush=True)

    def section(self, title: str, body: Callable[[], None]) -> None:
        try:
            body()
        except SectionAborted as aborted:
            print(f"     ({title}: the remaining checks depend on '{aborted}' and were skipped)", flush=True)
        except Exception as exc:  # a bug outside any check
            self.failures.append(title)
            print(f"FAIL {title}: {describe(exc)}", flush=True)
            traceback.print_exc()


class SectionAborted(Exception):
    pass


def describe(exc: BaseException) -> str:
    if isinstance(exc, CheckError):
        return str(exc)
    if isinstance(exc, HttpError):
        return f"HttpError {exc.resp.status}: {shorten(exc.content)}"
    return f"{type(exc).__name__}: {shorten(str(exc))}"


def shorten(text: object, limit: int = 400) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# HTTP plumbing


def trusting_session(ca: str) -> requests.Session:
    """A requests session that trusts only the sandbox CA (REQUESTS_CA_BUNDLE is ignored)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca
    return session


@dataclass
class Sandbox:
    base: str
    ca: str
    http: requests.Session

    def control(self, method: str, path: str, json: Any = None, expected: tuple[int, ...] = (200, 201, 204)) -> Any:
        response = self.http.request(method, f"{self.base}/_sandbox{path}", json=json, timeout=TIMEOUT)
        if response.status_code not in expected:
            raise CheckError(f"control {method} {path} answered {response.status_code}: {shorten(response.text)}")
        return response.json() if response.content else None

    def create_account(self, provider: str, email: str, *, mfa: bool) -> None:
        body = {"provider": provider, "email": email, "display_name": email.split("@")[0].title(), "mfa": mfa}
        if mfa:
            body["mfa_code"] = MFA_CODE
        self.control("POST", "/accounts", body, expected=(201,))

    def fault(self, **spec: Any) -> None:
        self.control("POST", "/faults", spec)

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def httplib2_http(self) -> httplib2.Http:
        return httplib2.Http(ca_certs=self.ca, timeout=TIMEOUT)


def rfc5322(sender: str, recipient: str, subject: str, body: str) -> str:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="acceptance.example")
    message.set_content(body)
    return message.as_string()


# --------------------------------------------------------------------------------------------
# Driving sign-in pages the way a browser does


@dataclass
class FormField:
    tag: str
    name: str
    type: str
    value: str
    id: str
    autocomplete: str


@dataclass
class Form:
    action: str
    method: str
    fields: list[FormField] = field(default_factory=list)


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(attributes.get("action", ""), (attributes.get("method") or "get").lower()))
            self._in_form = True
        elif tag in ("input", "button", "select", "textarea") and self._in_form:
            default_type = {"input": "text", "button": "submit"}.get(tag, tag)
            self.forms[-1].fields.append(
                FormField(
                    tag=tag,
                    name=attributes.get("name", ""),
                    type=(attributes.get("type") or default_type).lower(),
                    value=attributes.get("value", ""),
                    id=attributes.get("id", ""),
                    autocomplete=attributes.get("autocomplete", ""),
                )
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


EMAIL_NAMES = ("login", "loginfmt", "email", "username", "identifier")
CODE_NAMES = ("otc", "code", "otp", "totp", "pin")


def is_cancel(item: FormField) -> bool:
    return any("cancel" in text.lower() for text in (item.name, item.value, item.id))


@dataclass
class SignIn:
    response: dict[str, str]
    code_pages: int


def drive_sign_in(
    http: requests.Session, url: str, *, email: str, password: str, codes: list[str], redirect_uri: str
) -> SignIn:
    """Fill in the sign-in page(s) until the provider sends the browser back to redirect_uri."""
    pending_codes = list(codes)
    code_pages = 0
    response = http.get(url, allow_redirects=False, timeout=TIMEOUT)
    for _step in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(redirect_uri):
                return SignIn(dict(parse_qsl(urlsplit(location).query)), code_pages)
            response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
            continue
        expect(response.status_code == 200, f"sign-in page {response.url} answered {response.status_code}")
        parser = FormParser()
        parser.feed(response.text)
        forms = [form for form in parser.forms if form.fields]
        expect(forms, f"no form on the sign-in page {response.url}: {shorten(response.text)}")
        form = next((form for form in forms if form.method == "post"), forms[0])
        action = urljoin(response.url, form.action or response.url)
        data: list[tuple[str, str]] = []
        submit_added = False
        for item in form.fields:
            if not item.name:
                continue
            if item.type in ("submit", "image"):
                if not submit_added and not is_cancel(item):
                    data.append((item.name, item.value))
                    submit_added = True
            elif item.type in ("button", "reset", "checkbox", "radio"):
                continue
            elif item.type == "hidden":
                data.append((item.name, item.value))
            elif item.type == "password":
                data.append((item.name, password))
            elif item.name.lower() in CODE_NAMES or item.autocomplete == "one-time-code":
                expect(pending_codes, "the provider asked for a one-time code more often than expected")
                code_pages += 1
                data.append((item.name, pending_codes.pop(0)))
            elif item.type == "email" or item.name.lower() in EMAIL_NAMES:
                data.append((item.name, email))
            else:
                data.append((item.name, item.value))
        if action.startswith(redirect_uri):  # response_mode=form_post: the browser would post this back
            return SignIn(dict(data), code_pages)
        if form.method == "post":
            response = http.post(action, data=data, allow_redirects=False, timeout=TIMEOUT)
        else:
            response = http.get(action, params=data, allow_redirects=False, timeout=TIMEOUT)
    raise CheckError("sign-in did not return to the redirect_uri within 10 pages")


# --------------------------------------------------------------------------------------------
# Microsoft


@dataclass
class MicrosoftState:
    user: str
    mfa_user: str
    access_token: str = ""
    refresh_token: str = ""
    mfa_access_token: str = ""
    aspire_id: str = ""
    processed_id: str = ""


class Graph:
    def __init__(self, sandbox: Sandbox, state: MicrosoftState) -> None:
        self.sandbox = sandbox
        self.state = state
        self.http = trusting_session(sandbox.ca)
        self.root = f"{sandbox.base}/v1.0"

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.root}{path}"
        all_headers = {"Authorization": f"Bearer {self.state.access_token}", **(headers or {})}
        return self.http.request(method, url, json=json, headers=all_headers, params=params, timeout=TIMEOUT)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        expect(
            response.status_code == status,
            f"{method} {path} answered {response.status_code} (expected {status}): {shorten(response.text)}",
        )
        return response.json() if response.content else None

    def delta_pages(self, url: str, params: dict[str, str] | None = None, page_size: int = 2) -> tuple[list[dict], str]:
        """Follow @odata.nextLink to the @odata.deltaLink; returns the items and the deltaLink."""
        items: list[dict] = []
        next_url: str | None = url
        for _page in range(100):
            assert next_url is not None
            body = self.ok("GET", next_url, params=params, headers={"Prefer": f"odata.maxpagesize={page_size}"})
            params = None
            expect(
                len(body["value"]) <= page_size, f"a page held {len(body['value'])} items for maxpagesize {page_size}"
            )
            items.extend(body["value"])
            if "@odata.deltaLink" in body:
                link = body["@odata.deltaLink"]
                expect(link.startswith(self.root), f"deltaLink {link} does not point at the sandbox")
                return items, link
            next_url = body.get("@odata.nextLink")
            expect(next_url, "a delta page had neither @odata.nextLink nor @odata.deltaLink")
        raise CheckError("delta did not end within 100 pages")


def msal_app(sandbox: Sandbox) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        MS_CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{sandbox.base}/organizations",
        instance_discovery=False,
        http_client=trusting_session(sandbox.ca),
    )


@dataclass
class MicrosoftSignIn:
    result: dict[str, Any]
    sign_in: SignIn
    flow: dict[str, Any]


def expect_replay_refused(sandbox: Sandbox, token_path: str, **grant: str) -> dict[str, Any]:
    """Redeem an authorization code that was redeemed already: the answer must be 400 invalid_grant."""
    response = sandbox.http.post(
        f"{sandbox.base}{token_path}",
        timeout=TIMEOUT,
        data={
            "grant_type": "authorization_code", "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT_URI, **grant
        },
    )
    body: dict[str, Any] = response.json()
    expect(
        response.status_code == 400 and body.get("error") == "invalid_grant",
        f"replay answered {response.status_code}: {shorten(response.text)}",
    )
    return body


def microsoft_sign_in(sandbox: Sandbox, email: str, codes: list[str], response_mode: str = "query") -> MicrosoftSignIn:
    app = msal_app(sandbox)
    with warnings.catch_warnings():  # msal recommends form_post; both modes are checked
        warnings.simplefilter("ignore", UserWarning)
        flow = app.initiate_auth_code_flow(MS_SCOPES, redirect_uri=REDIRECT_URI, response_mode=response_mode)
    expect("code_challenge=" in flow["auth_uri"], "msal's authorize URL carries no PKCE code_challenge")
    browser = trusting_session(sandbox.ca)
    sign_in = drive_sign_in(
        browser, flow["auth_uri"], email=email, password=PASSWORD, codes=codes, redirect_uri=REDIRECT_URI
    )
    expect("code" in sign_in.response, f"the redirect carried no code: {sign_in.response}")
    result = app.acquire_token_by_auth_code_flow(flow, sign_in.response)
    expect(
        "access_token" in result,
        f"acquire_token_by_auth_code_flow: {result.get('error')}: {shorten(result.get('error_description', ''))}",
    )
    expect(result.get("refresh_token"), "no refresh token (msal asks for offline_access)")
    claims = result.get("id_token_claims") or {}
    expect(
        claims.get("preferred_username", "").lower() == email,
        f"id_token preferred_username is {claims.get('preferred_username')!r}, expected {email}",
    )
    return MicrosoftSignIn(result, sign_in, flow)


def check_microsoft_identity(report: Report, sandbox: Sandbox, ms: MicrosoftState) -> None:
    with report.check("microsoft: create accounts (one with MFA) through the control API"):
        sandbox.create_account("microsoft", ms.user, mfa=False)
        sandbox.create_account("microsoft", ms.mfa_user, mfa=True)
        accounts = sandbox.control("GET", f"/accounts/microsoft/{ms.mfa_user}")
        expect(accounts, "the new account cannot be read back")

    with report.check("microsoft: auth code flow with PKCE, no MFA (msal)"):
        signed_in = microsoft_sign_in(sandbox, ms.user, [])
        expect(signed_in.sign_in.code_pages == 0, "an account without MFA was asked for a code")
        ms.access_token = signed_in.result["access_token"]
        ms.refresh_token = signed_in.result["refresh_token"]
        me = Graph(sandbox, ms).ok("GET", "/me")
        expect(me.get("mail", "").lower() == ms.user, f"/me.mail is {me.get('mail')!r}")

    with report.check("microsoft: a redeemed code is refused when replayed (invalid_grant 54005)", fatal=False):
        body = expect_replay_refused(
            sandbox,
            "/organizations/oauth2/v2.0/token",
            client_id=MS_CLIENT_ID,
            code=signed_in.sign_in.response["code"],
            code_verifier=signed_in.flow["code_verifier"],
            scope=" ".join(MS_SCOPES),
        )
        expect(54005 in body.get("error_codes", []), f"error_codes {body.get('error_codes')}")

    with report.check(
        "microsoft: auth code flow with PKCE and MFA, a wrong code retried, form_post (msal)", fatal=False
    ):
        signed_in = microsoft_sign_in(sandbox, ms.mfa_user, [WRONG_CODE, MFA_CODE], response_mode="form_post")
        code_pages = signed_in.sign_in.code_pages
        expect(code_pages == 2, f"the code page was shown {code_pages} time(s), expected 2")
        ms.mfa_access_token = signed_in.result["access_token"]

    with report.check("microsoft: refresh gives a new access token and rotates the refresh token"):
        app = msal_app(sandbox)
        result = app.acquire_token_by_refresh_token(ms.refresh_token, MS_SCOPES)
        expect(
            "access_token" in result,
            f"refresh failed: {result.get('error')}: {shorten(result.get('error_description', ''))}",
        )
        expect(result["access_token"] != ms.access_token, "the refreshed access token is the old one")
        expect(
            result.get("refresh_token") and result["refresh_token"] != ms.refresh_token,
            "the refresh token was not rotated",
        )
        old_refresh_token = ms.refresh_token
        ms.access_token, ms.refresh_token = result["access_token"], result["refresh_token"]
        Graph(sandbox, ms).ok("GET", "/me")
        replay = msal_app(sandbox).acquire_token_by_refresh_token(old_refresh_token, MS_SCOPES)
        expect(
            replay.get("error") == "invalid_grant",
            f"the rotated-out refresh token gave {replay.get('error') or 'a token'}, expected invalid_grant",
        )


def check_microsoft_mail(report: Report, sandbox: Sandbox, ms: MicrosoftState) -> None:
    graph = Graph(sandbox, ms)
    with report.check("microsoft: create mail folders Aspire and Processed"):
        ms.aspire_id = graph.ok("POST", "/me/mailFolders", 201, json={"displayName": "Aspire"})["id"]
        ms.processed_id = graph.ok("POST", "/me/mailFolders", 201, json={"displayName": "Processed"})["id"]
        names = {folder["displayName"] for folder in graph.ok("GET", "/me/mailFolders", params={"$top": "50"})["value"]}
        expect({"Aspire", "Processed"} <= names, f"mailFolders lists {sorted(names)}")

    inserted: dict[str, str] = {}  # internetMessageId -> id
    with report.check("microsoft: raw messages put into Aspire through the control API are listed"):
        for number in range(3):
            raw = rfc5322("buyer@customer.example", ms.user, f"Quote request {number}", f"Body {number}")
            answer = sandbox.control(
                "POST", f"/accounts/microsoft/{ms.user}/messages", {"folder": "Aspire", "raw": raw}
            )
            inserted[answer["internet_message_id"]] = answer["id"]
        listed = graph.ok(
            "GET",
            f"/me/mailFolders/{ms.aspire_id}/messages",
            params={"$top": "50", "$select": "id,subject,internetMessageId,parentFolderId"},
        )["value"]
        expect(
            {m["internetMessageId"] for m in listed} == set(inserted),
            f"Aspire lists {[m['internetMessageId'] for m in listed]}, inserted {list(inserted)}",
        )
        expect(all(m["parentFolderId"] == ms.aspire_id for m in listed), "a listed message has another parentFolderId")

    aspire_delta_link = ""
    with report.check("microsoft: message delta of Aspire lists the folder", fatal=False):
        items, aspire_delta_link = graph.delta_pages(
            f"/me/mailFolders/{ms.aspire_id}/messages/delta", params={"$select": "subject"}
        )
        expect(
            {item["id"] for item in items} == set(inserted.values()),
            f"delta lists {sorted(item['id'] for item in items)}",
        )

    with report.check("microsoft: move to Processed through $batch, then only Processed holds them"):
        steps: list[dict[str, Any]] = [
            {
                "id": str(index),
                "method": "POST",
                "url": f"/me/messages/{message_id}/move",
                "headers": {"Content-Type": "application/json"},
                "body": {"destinationId": ms.processed_id},
            }
            for index, message_id in enumerate(inserted.values(), start=1)
        ]
        responses = graph.ok("POST", "/$batch", json={"requests": steps})["responses"]
        expect(sorted(r["id"] for r in responses) == sorted(s["id"] for s in steps), "a batch step has no answer")
        for answer in responses:
            expect(
                answer["status"] == 201, f"move step {answer['id']} answered {answer['status']}: {answer.get('body')}"
            )
            expect(answer["body"]["parentFolderId"] == ms.processed_id, "a moved message is not in Processed")
        processed = graph.ok(
            "GET",
            f"/me/mailFolders/{ms.processed_id}/messages",
            params={"$top": "50", "$select": "id,internetMessageId"},
        )["value"]
        expect({m["internetMessageId"] for m in processed} == set(inserted), "Processed does not hold the moved mail")
        aspire = graph.ok("GET", f"/me/mailFolders/{ms.aspire_id}/messages", params={"$top": "50"})["value"]
        expect(aspire == [], f"Aspire still lists {len(aspire)} message(s)")
        old_id = next(iter(inserted.values()))
        status = graph.call("GET", f"/me/messages/{old_id}").status_code
        expect(status == 404, f"the pre-move id answered {status}, expected 404 (ids change on move)")

    if aspire_delta_link:
        with report.check(
            "microsoft: incremental message delta of Aspire reports the moved mail @removed", fatal=False
        ):
            items, _link = graph.delta_pages(aspire_delta_link)
            removed = {item["id"] for item in items if "@removed" in item}
            expect(removed == set(inserted.values()), f"@removed ids {sorted(removed)}; items {shorten(items)}")
            expect(all("@removed" in item for item in items), "the incremental delta lists more than the removals")

    with report.check("microsoft: sendMail puts the message in Sent Items"):
        subject = f"Proposal {uuid.uuid4().hex[:6]}"
        graph.ok(
            "POST",
            "/me/sendMail",
            202,
            json={
                "message": {
                    "subject": subject,
                    "body": {"contentType": "Text", "content": "Please find the proposal."},
                    "toRecipients": [{"emailAddress": {"address": ms.mfa_user}}],
                },
                "saveToSentItems": True,
            },
        )
        sent = graph.ok("GET", "/me/mailFolders/sentitems/messages", params={"$top": "50", "$select": "subject"})
        expect(
            subject in {m["subject"] for m in sent["value"]},
            f"Sent Items holds {[m['subject'] for m in sent['value']]}",
        )

    if ms.mfa_access_token:
        with report.check("microsoft: the sent message reaches the sandbox recipient's Inbox", fatal=False):
            recipient = Graph(sandbox, MicrosoftState(ms.mfa_user, ms.mfa_user, access_token=ms.mfa_access_token))
            inbox = recipient.ok("GET", "/me/mailFolders/inbox/messages", params={"$top": "50", "$select": "subject"})
            expect(
                subject in {m["subject"] for m in inbox["value"]},
                f"Inbox holds {[m['subject'] for m in inbox['value']]}",
            )


def check_microsoft_calendar(report: Report, sandbox: Sandbox, ms: MicrosoftState) -> None:
    graph = Graph(sandbox, ms)
    with report.check("microsoft: create a weekly recurring event through Graph"):
        master = graph.ok(
            "POST",
            "/me/events",
            201,
            json={
                "subject": "Weekly pipeline review",
                "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "America/Chicago"},
                "end": {"dateTime": "2026-12-01T09:30:00", "timeZone": "America/Chicago"},
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
                    "range": {
                        "type": "numbered",
                        "startDate": "2026-12-01",
                        "numberOfOccurrences": 4,
                        "recurrenceTimeZone": "America/Chicago",
                    },
                },
            },
        )
        expect(master.get("type") == "seriesMaster", f"the new event's type is {master.get('type')!r}")

    with report.check("microsoft: full calendarView/delta pages to a deltaLink with the 4 occurrences"):
        items, delta_link = graph.delta_pages(
            "/me/calendarView/delta", params={"startDateTime": WINDOW_START, "endDateTime": WINDOW_END}
        )
        occurrences = [item for item in items if "@removed" not in item]
        expect(len(occurrences) == 4, f"{len(occurrences)} instances: {[i.get('id') for i in occurrences]}")
        expect(
            all(item.get("seriesMasterId") == master["id"] for item in occurrences),
            "an instance does not name the series master",
        )
        expect(
            all(item.get("type") == "occurrence" for item in occurrences),
            f"instance types {[item.get('type') for item in occurrences]}",
        )

    with report.check("microsoft: incremental calendarView/delta returns only the changed occurrence"):
        changed = sorted(occurrences, key=lambda item: item["start"]["dateTime"])[1]
        graph.ok("PATCH", f"/me/events/{changed['id']}", json={"subject": "Pipeline review (moved agenda)"})
        items, _link = graph.delta_pages(delta_link)
        expect(
            [item["id"] for item in items] == [changed["id"]],
            f"incremental delta returned {[(i.get('id'), i.get('subject')) for i in items]}",
        )
        expect(items[0].get("subject") == "Pipeline review (moved agenda)", f"subject is {items[0].get('subject')!r}")
        expect(items[0].get("type") == "exception", f"the changed occurrence's type is {items[0].get('type')!r}")

    with report.check("microsoft: an expired delta token gives 410 SyncStateNotFound"):
        sandbox.control("POST", f"/accounts/microsoft/{ms.user}/expire-sync-state")
        response = graph.call("GET", delta_link)
        expect(response.status_code == 410, f"the expired deltaLink answered {response.status_code}")
        code = graph_error(response).get("code")
        expect(code == "SyncStateNotFound", f"error code {code!r}")


def graph_error(response: requests.Response) -> dict[str, Any]:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckError(f"not Graph's error shape: {shorten(response.text)}") from exc
    expect(isinstance(error.get("code"), str) and error["code"], f"error without a code: {error}")
    expect(isinstance(error.get("message"), str), f"error without a message: {error}")
    expect(isinstance(error.get("innerError"), dict), f"error without innerError: {error}")
    return error


def check_microsoft_faults(report: Report, sandbox: Sandbox, ms: MicrosoftState) -> None:
    graph = Graph(sandbox, ms)
    with report.check("microsoft: injected 429 answers in Graph's shape with Retry-After", fatal=False):
        sandbox.fault(kind="status", status=429, retry_after=3, path="^/v1.0/me/mailFolders", account=ms.user)
        response = graph.call("GET", "/me/mailFolders")
        expect(response.status_code == 429, f"answered {response.status_code}")
        expect(response.headers.get("Retry-After") == "3", f"Retry-After is {response.headers.get('Retry-After')!r}")
        graph_error(response)
        graph.ok("GET", "/me/mailFolders")

    with report.check("microsoft: a 429 on a $batch step answers that step alone", fatal=False):
        sandbox.fault(kind="status", status=429, retry_after=2, path="^/v1.0/me/mailFolders/inbox$", account=ms.user)
        body = graph.ok(
            "POST",
            "/$batch",
            json={
                "requests": [
                    {"id": "1", "method": "GET", "url": "/me/mailFolders/inbox"},
                    {"id": "2", "method": "GET", "url": "/me"},
                ]
            },
        )
        by_id = {answer["id"]: answer for answer in body["responses"]}
        expect(by_id["1"]["status"] == 429, f"the throttled step answered {by_id['1']['status']}")
        headers = {key.lower(): value for key, value in (by_id["1"].get("headers") or {}).items()}
        expect(str(headers.get("retry-after")) == "2", f"step headers {by_id['1'].get('headers')}")
        expect(by_id["2"]["status"] == 200, f"the other step answered {by_id['2']['status']}")

    with report.check("microsoft: injected 503 answers in Graph's shape", fatal=False):
        sandbox.fault(kind="status", status=503, path="^/v1.0/me$", account=ms.user)
        response = graph.call("GET", "/me")
        expect(response.status_code == 503, f"answered {response.status_code}")
        graph_error(response)

    with report.check("microsoft: a dropped connection is a requests connection error", fatal=False):
        sandbox.fault(kind="drop", path="^/v1.0/me$", account=ms.user)
        try:
            response = graph.call("GET", "/me")
            response.json()
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
            pass
        else:
            raise CheckError(f"the request completed with {response.status_code}")
        finally:
            sandbox.clear_faults()
        graph.ok("GET", "/me")

    with report.check("microsoft: invalid_grant fault fails the next refresh (msal)", fatal=False):
        sandbox.fault(kind="invalid_grant", account=ms.user)
        result = msal_app(sandbox).acquire_token_by_refresh_token(ms.refresh_token, MS_SCOPES)
        expect(result.get("error") == "invalid_grant", f"refresh gave {result.get('error') or 'a token'}")
        expect(
            "AADSTS50173" in result.get("error_description", ""),
            f"error_description {shorten(result.get('error_description', ''))!r}",
        )


# --------------------------------------------------------------------------------------------
# Google


@dataclass
class GoogleState:
    user: str
    mfa_user: str
    credentials: Credentials | None = None


def google_flow(sandbox: Sandbox) -> Flow:
    config = {
        "web": {
            "client_id": GOOGLE_CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "auth_uri": f"{sandbox.base}/o/oauth2/v2/auth",
            "token_uri": f"{sandbox.base}/token",
            "redirect_uris": [REDIRECT_URI],
        }
    }
    return Flow.from_client_config(
        config, scopes=GOOGLE_SCOPES, redirect_uri=REDIRECT_URI, autogenerate_code_verifier=True
    )


def google_sign_in(sandbox: Sandbox, email: str, codes: list[str]) -> tuple[Credentials, SignIn, Flow]:
    flow = google_flow(sandbox)
    auth_url, state = flow.authorization_url(access_type="offline")
    expect("code_challenge_method=S256" in auth_url, "the authorization URL carries no S256 PKCE challenge")
    browser = trusting_session(sandbox.ca)
    sign_in = drive_sign_in(browser, auth_url, email=email, password=PASSWORD, codes=codes, redirect_uri=REDIRECT_URI)
    expect(sign_in.response.get("state") == state, f"state {sign_in.response.get('state')!r} != {state!r}")
    expect("code" in sign_in.response, f"the redirect carried no code: {sign_in.response}")
    token = flow.fetch_token(code=sign_in.response["code"], verify=sandbox.ca, timeout=TIMEOUT)
    expect(token.get("refresh_token"), "no refresh token for access_type=offline on first consent")
    return flow.credentials, sign_in, flow


def gmail_service(sandbox: Sandbox, credentials: Credentials) -> Any:
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=sandbox.httplib2_http())
    return build("gmail", "v1", http=http, client_options={"api_endpoint": f"{sandbox.base}/"}, cache_discovery=False)


def calendar_service(sandbox: Sandbox, credentials: Credentials) -> Any:
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=sandbox.httplib2_http())
    return build(
        "calendar",
        "v3",
        http=http,
        client_options={"api_endpoint": f"{sandbox.base}/calendar/v3/"},
        cache_discovery=False,
    )


def google_requests_transport(sandbox: Sandbox) -> google.auth.transport.requests.Request:
    return google.auth.transport.requests.Request(session=trusting_session(sandbox.ca))


def check_google_identity(report: Report, sandbox: Sandbox, g: GoogleState) -> None:
    with report.check("google: create accounts (one with MFA) through the control API"):
        sandbox.create_account("google", g.user, mfa=False)
        sandbox.create_account("google", g.mfa_user, mfa=True)

    with report.check("google: web server flow with PKCE and access_type=offline, no MFA"):
        credentials, sign_in, flow = google_sign_in(sandbox, g.user, [])
        expect(sign_in.code_pages == 0, "an account without MFA was asked for a code")
        g.credentials = credentials
        profile = gmail_service(sandbox, credentials).users().getProfile(userId="me").execute()
        expect(profile["emailAddress"].lower() == g.user, f"getProfile says {profile['emailAddress']!r}")

    with report.check("google: a redeemed code is refused when replayed (invalid_grant)", fatal=False):
        expect_replay_refused(
            sandbox, "/token", client_id=GOOGLE_CLIENT_ID, code=sign_in.response["code"],
            code_verifier=flow.code_verifier,
        )

    with report.check("google: web server flow with PKCE and MFA, a wrong code retried", fatal=False):
        credentials, sign_in, _flow = google_sign_in(sandbox, g.mfa_user, [WRONG_CODE, MFA_CODE])
        expect(sign_in.code_pages == 2, f"the code form was shown {sign_in.code_pages} time(s), expected 2")
        profile = gmail_service(sandbox, credentials).users().getProfile(userId="me").execute()
        expect(profile["emailAddress"].lower() == g.mfa_user, f"getProfile says {profile['emailAddress']!r}")

    with report.check("google: Credentials.refresh gives a new access token"):
        credentials = g.credentials
        assert credentials is not None
        old_token, old_refresh_token = credentials.token, credentials.refresh_token
        credentials.refresh(google_requests_transport(sandbox))
        expect(credentials.token and credentials.token != old_token, "the refreshed access token is the old one")
        expect(credentials.refresh_token == old_refresh_token, "the refresh token changed (Google does not rotate)")
        gmail_service(sandbox, credentials).users().getProfile(userId="me").execute()


def label_ids(gmail: Any, label: str) -> list[str]:
    listing = gmail.users().messages().list(userId="me", labelIds=[label], maxResults=100).execute()
    return [message["id"] for message in listing.get("messages", [])]


def check_google_mail(report: Report, sandbox: Sandbox, g: GoogleState) -> None:
    assert g.credentials is not None
    gmail = gmail_service(sandbox, g.credentials)
    labels: dict[str, str] = {}
    with report.check("google: create labels Aspire and Processed"):
        for name in ("Aspire", "Processed"):
            created = (
                gmail.users()
                .labels()
                .create(
                    userId="me",
                    body={"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"},
                )
                .execute()
            )
            expect(created.get("type") == "user", f"label {name} has type {created.get('type')!r}")
            labels[name] = created["id"]
        listed = {label["name"]: label["id"] for label in gmail.users().labels().list(userId="me").execute()["labels"]}
        expect(all(listed.get(name) == label_id for name, label_id in labels.items()), f"labels.list gives {listed}")
        expect({"INBOX", "SENT"} <= set(listed.values()), "system labels missing from labels.list")

    inserted: list[str] = []
    with report.check("google: raw messages put into Aspire through the control API are listed"):
        for number in range(3):
            raw = rfc5322("buyer@customer.example", g.user, f"Quote request {number}", f"Body {number}")
            answer = sandbox.control("POST", f"/accounts/google/{g.user}/messages", {"folder": "Aspire", "raw": raw})
            expect(labels["Aspire"] in answer["labelIds"], f"the stored message has labels {answer['labelIds']}")
            inserted.append(answer["id"])
        in_aspire = label_ids(gmail, labels["Aspire"])
        expect(sorted(in_aspire) == sorted(inserted), f"Aspire lists {in_aspire}, inserted {inserted}")
        expect(in_aspire == list(reversed(inserted)), f"messages.list is not newest first: {in_aspire}")

    history_id = gmail.users().getProfile(userId="me").execute()["historyId"]
    with report.check("google: batchModify moves them to Processed, then only Processed holds them"):
        gmail.users().messages().batchModify(
            userId="me",
            body={"ids": inserted, "addLabelIds": [labels["Processed"]], "removeLabelIds": [labels["Aspire"]]},
        ).execute()
        expect(sorted(label_ids(gmail, labels["Processed"])) == sorted(inserted), "Processed does not hold them")
        expect(label_ids(gmail, labels["Aspire"]) == [], "Aspire still lists messages")
        for message_id in inserted:
            got = gmail.users().messages().get(userId="me", id=message_id, format="minimal").execute()
            expect(
                labels["Processed"] in got["labelIds"] and labels["Aspire"] not in got["labelIds"],
                f"message {message_id} has labels {got['labelIds']}",
            )

    with report.check("google: history.list records the label changes", fatal=False):
        history = gmail.users().history().list(userId="me", startHistoryId=history_id).execute()
        added = {
            item["message"]["id"]
            for record in history.get("history", [])
            for item in record.get("labelsAdded", [])
            if labels["Processed"] in item["labelIds"]
        }
        removed = {
            item["message"]["id"]
            for record in history.get("history", [])
            for item in record.get("labelsRemoved", [])
            if labels["Aspire"] in item["labelIds"]
        }
        expect(added == set(inserted) and removed == set(inserted), f"history: {shorten(history)}")
        expect(int(history["historyId"]) > int(history_id), "history.list's historyId did not advance")

    with report.check("google: messages.send labels the message SENT"):
        message = EmailMessage()
        message["To"] = "buyer@customer.example"
        message["Subject"] = f"Proposal {uuid.uuid4().hex[:6]}"
        message.set_content("Please find the proposal.")
        raw = base64.urlsafe_b64encode(message.as_bytes()).decode()
        sent = gmail.users().messages().send(userId="me", body={"raw": raw}).execute()
        expect("SENT" in sent.get("labelIds", []), f"send answered labels {sent.get('labelIds')}")
        got = (
            gmail.users()
            .messages()
            .get(userId="me", id=sent["id"], format="metadata", metadataHeaders=["Subject", "From", "Message-ID"])
            .execute()
        )
        expect("SENT" in got["labelIds"], f"the sent message has labels {got['labelIds']}")
        headers = {header["name"].lower(): header["value"] for header in got["payload"]["headers"]}
        expect(headers.get("subject") == message["Subject"], f"headers {headers}")
        expect(headers.get("from") and headers.get("message-id"), f"Gmail did not add From / Message-ID: {headers}")
        expect(sent["id"] in label_ids(gmail, "SENT"), "messages.list(labelIds=SENT) does not list it")


def check_google_calendar(report: Report, sandbox: Sandbox, g: GoogleState) -> None:
    assert g.credentials is not None
    calendar = calendar_service(sandbox, g.credentials)
    events = calendar.events()
    with report.check("google: insert a weekly recurring event"):
        series = events.insert(
            calendarId="primary",
            body={
                "summary": "Weekly pipeline review",
                "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "America/Chicago"},
                "end": {"dateTime": "2026-12-01T09:30:00", "timeZone": "America/Chicago"},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            },
        ).execute()
        expect(series.get("recurrence") == ["RRULE:FREQ=WEEKLY;COUNT=4"], f"recurrence {series.get('recurrence')}")

    sync_token = ""
    instances: list[dict[str, Any]] = []
    with report.check("google: full events.list (singleEvents) pages to a nextSyncToken with the 4 instances"):
        page_token: str | None = None
        for _page in range(50):
            page = events.list(calendarId="primary", singleEvents=True, maxResults=2, pageToken=page_token).execute()
            instances.extend(page.get("items", []))
            page_token = page.get("nextPageToken")
            if not page_token:
                sync_token = page.get("nextSyncToken", "")
                break
        expect(sync_token, "the last page has no nextSyncToken")
        expect(len(instances) == 4, f"{len(instances)} items: {[item.get('id') for item in instances]}")
        expect(
            all(item.get("recurringEventId") == series["id"] for item in instances),
            "an instance does not name its recurringEventId",
        )

    with report.check("google: incremental events.list with the syncToken returns only the changed instance"):
        changed = sorted(instances, key=lambda item: item["start"]["dateTime"])[1]
        events.patch(
            calendarId="primary", eventId=changed["id"], body={"summary": "Pipeline review (moved agenda)"}
        ).execute()
        page = events.list(calendarId="primary", singleEvents=True, syncToken=sync_token).execute()
        items = page.get("items", [])
        expect(
            [item["id"] for item in items] == [changed["id"]],
            f"incremental list returned {[(item.get('id'), item.get('summary')) for item in items]}",
        )
        expect(items[0].get("summary") == "Pipeline review (moved agenda)", f"summary {items[0].get('summary')!r}")
        expect(page.get("nextSyncToken"), "the incremental page has no nextSyncToken")

    gmail = gmail_service(sandbox, g.credentials)
    history_id = gmail.users().getProfile(userId="me").execute()["historyId"]
    with report.check("google: expired tokens: Calendar 410 fullSyncRequired, Gmail history 404"):
        gmail.users().history().list(userId="me", startHistoryId=history_id).execute()
        sandbox.control("POST", f"/accounts/google/{g.user}/expire-sync-state")
        error = expect_http_error(
            lambda: events.list(calendarId="primary", singleEvents=True, syncToken=sync_token).execute(), 410
        )
        expect(google_reasons(error) == ["fullSyncRequired"], f"reasons {google_reasons(error)}")
        expect_http_error(lambda: gmail.users().history().list(userId="me", startHistoryId=history_id).execute(), 404)


def expect_http_error(call: Callable[[], Any], status: int) -> HttpError:
    try:
        call()
    except HttpError as error:
        expect(
            error.resp.status == status, f"answered {error.resp.status} (expected {status}): {shorten(error.content)}"
        )
        return error
    raise CheckError(f"the call succeeded, expected {status}")


def google_error(error: HttpError) -> dict[str, Any]:
    try:
        body = json.loads(error.content)["error"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckError(f"not Google's error shape: {shorten(error.content)}") from exc
    expect(body.get("code") == error.resp.status, f"error.code {body.get('code')!r} != {error.resp.status}")
    expect(isinstance(body.get("message"), str), f"no message: {body}")
    expect(isinstance(body.get("errors"), list) and body["errors"], f"no errors list: {body}")
    return body


def google_reasons(error: HttpError) -> list[str]:
    return [item.get("reason") for item in google_error(error)["errors"]]


def check_google_faults(report: Report, sandbox: Sandbox, g: GoogleState) -> None:
    assert g.credentials is not None
    gmail = gmail_service(sandbox, g.credentials)

    def profile() -> Any:
        return gmail.users().getProfile(userId="me").execute()

    with report.check("google: injected 429 answers in Gmail's shape with Retry-After", fatal=False):
        sandbox.fault(kind="status", status=429, retry_after=3, path="^/gmail/v1/users/me/profile", account=g.user)
        error = expect_http_error(profile, 429)
        expect(error.resp.get("retry-after") == "3", f"Retry-After is {error.resp.get('retry-after')!r}")
        body = google_error(error)
        expect(body.get("status") == "RESOURCE_EXHAUSTED", f"status {body.get('status')!r}")
        profile()

    with report.check("google: injected 503 answers in Gmail's shape", fatal=False):
        sandbox.fault(kind="status", status=503, path="^/gmail/v1/users/me/profile", account=g.user)
        body = google_error(expect_http_error(profile, 503))
        expect(body.get("status") == "UNAVAILABLE", f"status {body.get('status')!r}")

    with report.check("google: a dropped connection is an httplib2 connection error", fatal=False):
        # count 2: httplib2 may retry a request once on a broken connection
        sandbox.fault(kind="drop", path="^/gmail/v1/users/me/profile", account=g.user, count=2)
        try:
            profile()
        except (OSError, HTTPException, httplib2.HttpLib2Error):
            pass
        else:
            raise CheckError("the request completed")
        finally:
            sandbox.clear_faults()
        profile()

    with report.check("google: invalid_grant fault makes Credentials.refresh raise RefreshError", fatal=False):
        credentials = g.credentials
        sandbox.fault(kind="invalid_grant", account=g.user)
        for attempt in ("the next", "a later"):
            try:
                credentials.refresh(google_requests_transport(sandbox))
            except google.auth.exceptions.RefreshError as error:
                expect("invalid_grant" in str(error), f"{attempt} refresh: {shorten(error)}")
            else:
                raise CheckError(f"{attempt} refresh succeeded")


# --------------------------------------------------------------------------------------------
# Main


def run(base: str, ca: str) -> int:
    sandbox = Sandbox(base.rstrip("/"), ca, trusting_session(ca))
    report = Report()
    run_id = uuid.uuid4().hex[:8]
    ms = MicrosoftState(user=f"ada.{run_id}@contoso-sandbox.com", mfa_user=f"grace.{run_id}@contoso-sandbox.com")
    g = GoogleState(user=f"alan.{run_id}@example-sandbox.com", mfa_user=f"joan.{run_id}@example-sandbox.com")

    with report.check("sandbox health"):
        health = sandbox.control("GET", "/health")
        expect(health.get("ok") is True, f"health {health}")

    report.section("microsoft identity", lambda: check_microsoft_identity(report, sandbox, ms))
    if ms.access_token:
        report.section("microsoft mail", lambda: check_microsoft_mail(report, sandbox, ms))
        report.section("microsoft calendar", lambda: check_microsoft_calendar(report, sandbox, ms))
        report.section("microsoft faults", lambda: check_microsoft_faults(report, sandbox, ms))
    report.section("google identity", lambda: check_google_identity(report, sandbox, g))
    if g.credentials is not None:
        report.section("google mail", lambda: check_google_mail(report, sandbox, g))
        report.section("google calendar", lambda: check_google_calendar(report, sandbox, g))
        report.section("google faults", lambda: check_google_faults(report, sandbox, g))

    print(f"{report.passed} passed, {len(report.failures)} failed", flush=True)
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", help="a running sandbox, e.g. https://localhost:8025")
    parser.add_argument("--ca", help="the sandbox's ca.pem (with --base-url)")
    args = parser.parse_args(argv)
    if args.base_url:
        if not args.ca:
            parser.error("--base-url needs --ca")
        return run(args.base_url, args.ca)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from sandbox.runner import start_sandbox

    with tempfile.TemporaryDirectory(prefix="sandbox-acceptance-") as tmpdir:
        handle = start_sandbox(ca_dir=Path(tmpdir))
        try:
            return run(handle.base_url, str(handle.ca_path))
        finally:
            handle.stop()


if __name__ == "__main__":
    sys.exit(main())
