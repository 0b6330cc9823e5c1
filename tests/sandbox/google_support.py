"""Driving the sandbox's Google emulator through the real Google client libraries.

Every Gmail / Calendar response a test reads goes through ``run``, which checks it against the
schema the shipped discovery document declares for that method.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import google_auth_httplib2
import googleapiclient
import httplib2
import requests
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build

from sandbox.runner import SandboxProcess

CLIENT_ID = "aspire-sync.apps.sandbox"
CLIENT_SECRET = "sandbox-secret"
REDIRECT_URI = "http://localhost:8000/accounts/google/callback"
GMAIL_SCOPES = ["openid", "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/gmail.modify", "https://www.googleapis.com/auth/gmail.send",
                "https://www.googleapis.com/auth/gmail.labels"]
CALENDAR_SCOPES = ["https://www.googleapis.com/auth/calendar.events"]
DISCOVERY_DIR = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


# -- accounts and sign-in -------------------------------------------------------------------

def create_account(sandbox: SandboxProcess, email: str, **fields: Any) -> dict[str, Any]:
    return sandbox.control("POST", "/accounts", json={"provider": "google", "email": email, **fields})


def new_flow(sandbox: SandboxProcess, scopes: list[str] | None = None) -> Flow:
    config = {"web": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "auth_uri": f"{sandbox.base_url}/o/oauth2/v2/auth",
        "token_uri": f"{sandbox.base_url}/token", "redirect_uris": [REDIRECT_URI],
    }}
    return Flow.from_client_config(config, scopes=scopes or GMAIL_SCOPES + CALENDAR_SCOPES,
                                   redirect_uri=REDIRECT_URI, autogenerate_code_verifier=True)


def browser(sandbox: SandboxProcess) -> requests.Session:
    """A user agent for the sign-in pages that trusts the sandbox CA whatever the environment says."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_path)
    return session


def hidden_login_id(page: str) -> str:
    match = re.search(r'name="login_id" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


@dataclass
class Redirect:
    """Where the sign-in pages finally sent the browser: the app's redirect URI and its query."""

    url: str
    query: dict[str, str]


def sign_in(sandbox: SandboxProcess, authorization_url: str, email: str, password: str = "password",
            mfa_code: str | None = None, cancel: bool = False) -> Redirect | requests.Response:
    """Fill in the sign-in (and one-time-code) pages; the redirect back to the app, or the page
    shown instead when the sandbox refused."""
    with browser(sandbox) as session:
        page = session.get(authorization_url, allow_redirects=False)
        assert page.status_code == 200, page.text
        action = "cancel" if cancel else "next"
        response = session.post(f"{sandbox.base_url}/o/oauth2/v2/auth/signin", allow_redirects=False, data={
            "login_id": hidden_login_id(page.text), "email": email, "password": password, "action": action,
        })
        if response.status_code == 200 and "one-time-code" in response.text and mfa_code is not None:
            response = session.post(f"{sandbox.base_url}/o/oauth2/v2/auth/challenge", allow_redirects=False, data={
                "login_id": hidden_login_id(response.text), "code": mfa_code, "action": "next",
            })
        if response.status_code != 302:
            return response
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI), location
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        return Redirect(location, query)


def connect(sandbox: SandboxProcess, email: str, *, password: str = "password", scopes: list[str] | None = None,
            offline: bool = True, prompt: str | None = "consent") -> Credentials:
    """The whole consent flow for an existing account, ending with its credentials."""
    flow = new_flow(sandbox, scopes)
    options = {"prompt": prompt} if prompt else {}
    url, state = flow.authorization_url(access_type="offline" if offline else "online", **options)
    redirect = sign_in(sandbox, url, email, password)
    assert isinstance(redirect, Redirect), redirect.text
    assert redirect.query["state"] == state
    flow.fetch_token(code=redirect.query["code"], verify=str(sandbox.ca_path))
    flow.oauth2session.close()
    return flow.credentials


def token_request(sandbox: SandboxProcess) -> google.auth.transport.requests.Request:
    session = browser(sandbox)
    return google.auth.transport.requests.Request(session)


# -- API clients ----------------------------------------------------------------------------

def service(sandbox: SandboxProcess, credentials: Credentials, api: str) -> Any:
    """A discovery-based client the way the product builds one. Calendar's endpoint includes its
    service path (as https://www.googleapis.com/calendar/v3/ does), because ``api_endpoint``
    replaces the whole base URL."""
    version = {"gmail": "v1", "calendar": "v3"}[api]
    endpoint = sandbox.base_url if api == "gmail" else f"{sandbox.base_url}/calendar/v3/"
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(ca_certs=str(sandbox.ca_path)))
    return build(api, version, http=http, static_discovery=True, client_options={"api_endpoint": endpoint})


def run(request: Any) -> Any:
    """Execute a client request and check the response against its discovery schema."""
    result = request.execute()
    check_response(request.methodId, result)
    return result


def check_response(method_id: str, result: Any) -> None:
    api = method_id.split(".", 1)[0]
    method = methods(api)[method_id]
    if "response" not in method:
        assert result in ("", None, b""), result
        return
    check(api, {"$ref": method["response"]["$ref"]}, result, method_id)


# -- discovery schema checks ----------------------------------------------------------------

@cache
def discovery(api: str) -> dict[str, Any]:
    name = {"gmail": "gmail.v1.json", "calendar": "calendar.v3.json"}[api]
    return json.loads((DISCOVERY_DIR / name).read_text())


@cache
def methods(api: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(resource: dict[str, Any]) -> None:
        for method in resource.get("methods", {}).values():
            found[method["id"]] = method
        for child in resource.get("resources", {}).values():
            walk(child)

    walk(discovery(api))
    return found


def check(api: str, schema: dict[str, Any], value: Any, where: str) -> None:
    """Each property has the declared type (following $ref); undeclared properties are errors."""
    if "$ref" in schema:
        check(api, discovery(api)["schemas"][schema["$ref"]], value, f"{where}<{schema['$ref']}>")
        return
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), f"{where}: expected object, got {value!r}"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                check(api, properties[key], item, f"{where}.{key}")
            elif extra is not None:
                check(api, extra, item, f"{where}[{key}]")
            else:
                raise AssertionError(f"{where}: undeclared property {key!r}")
    elif kind == "array":
        assert isinstance(value, list), f"{where}: expected array, got {value!r}"
        for index, item in enumerate(value):
            check(api, schema["items"], item, f"{where}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{where}: expected string, got {value!r}"
        if schema.get("format") in ("int64", "uint64"):
            assert value.lstrip("-").isdigit(), f"{where}: expected a {schema['format']} string, got {value!r}"
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected integer, got {value!r}"
    elif kind == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected number"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: expected boolean, got {value!r}"
    elif kind != "any":
        raise AssertionError(f"{where}: schema without a type: {schema}")


# -- push notifications ---------------------------------------------------------------------

@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@contextmanager
def push_receiver() -> Iterator[tuple[str, queue.Queue[Delivery]]]:
    """A plain-HTTP endpoint on loopback standing in for the app's push webhook."""
    received: queue.Queue[Delivery] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put(Delivery(self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/google", received
    finally:
        server.shutdown()
        server.server_close()
