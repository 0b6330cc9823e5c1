"""The sandbox's ASGI application: provider emulators, the control API, faults, limits, logs."""

from __future__ import annotations

import asyncio
import base64
import collections
import html
import logging
import math
import time
import urllib.parse
from pathlib import Path
from typing import Any

import requests
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .emulator import Emulator
from .errors import api_of, error_for_path, graph_error, provider_of, unknown_route
from .event_spec import check_response
from .store import PROVIDERS, Store

log = logging.getLogger("sandbox")

# Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
GRAPH_MAILBOX_CONCURRENCY = 4
# Exchange Online's sending limit per mailbox; tests scale it through POST /_sandbox/limits.
GRAPH_SENDS_PER_MINUTE = 30
# Graph's Outlook limit per app and mailbox: 10,000 requests in any 10 minutes (each $batch step
# counted); over it, 429 ApplicationThrottled. Tests scale it through POST /_sandbox/limits.
# Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
GRAPH_MAILBOX_REQUESTS_PER_10_MINUTES = 10_000
GRAPH_MAILBOX_WINDOW_SECONDS = 600.0
# Graph refuses request bodies over 4 MB ("The maximum request length supported is 4MB.", 413):
# larger attachments go through upload sessions.
# Reference: https://learn.microsoft.com/en-us/graph/api/user-post-messages (4 MB, 413 Request Entity Too Large)
# Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments
GRAPH_MAX_REQUEST_BYTES = 4 * 1024 * 1024
# The two forms Gmail's rate-limit answers come in; POST /_sandbox/limits chooses the quota's.
# Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
GMAIL_RATE_LIMIT_STATUSES = (429, 403)


class Sandbox:
    """Holds the store, the emulators and the process-wide settings of one sandbox."""

    def __init__(self, store: Store, *, ca_path: Path | None = None, base_url: str = "",
                 latency_ms: float = 0.0) -> None:
        self.store = store
        # Added to every provider call (control calls excluded), so a benchmark waits as it would
        # on a real network; a request holds its mailbox's concurrency slot meanwhile.
        self.latency_ms = check_latency(latency_ms)
        self.ca_path = ca_path
        self.base_url = base_url
        self.emulators: dict[str, Emulator] = {}
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.limits_enabled = True
        self.graph_sends_per_minute = GRAPH_SENDS_PER_MINUTE
        self.graph_mailbox_requests = GRAPH_MAILBOX_REQUESTS_PER_10_MINUTES
        self.graph_mailbox_recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.gmail_rate_limit_status = GMAIL_RATE_LIMIT_STATUSES[0]
        self.background: set[asyncio.Task[Any]] = set()

    def register(self, emulator: Emulator) -> None:
        self.emulators[emulator.name] = emulator

    def reset_limits(self) -> None:
        self.in_flight.clear()
        self.limits_enabled = True
        self.graph_sends_per_minute = GRAPH_SENDS_PER_MINUTE
        self.graph_mailbox_requests = GRAPH_MAILBOX_REQUESTS_PER_10_MINUTES
        self.graph_mailbox_recent.clear()
        self.gmail_rate_limit_status = GMAIL_RATE_LIMIT_STATUSES[0]

    # -- Graph's concurrency limit per mailbox: plain requests and each step of a $batch ------
    def take_mailbox_slot(self, account: dict[str, Any]) -> bool:
        """Start a Graph request on the mailbox; False when it already has the most in flight."""
        if not self.limits_enabled:
            return True
        if self.in_flight[account["id"]] >= GRAPH_MAILBOX_CONCURRENCY:
            return False
        self.in_flight[account["id"]] += 1
        # The most the mailbox has had in flight at once, in GET /_sandbox/counters.
        counter = self.store.counters[account["email"]]
        counter["graph.peak_concurrent"] = max(counter["graph.peak_concurrent"], self.in_flight[account["id"]])
        return True

    def over_mailbox_quota(self, account: dict[str, Any]) -> float | None:
        """Count a Graph request on the mailbox; the seconds until one is allowed again when the
        mailbox has had its 10 minutes' worth."""
        if not self.limits_enabled:
            return None
        now = time.monotonic()
        recent = self.graph_mailbox_recent[account["id"]]
        while recent and recent[0] <= now - GRAPH_MAILBOX_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= self.graph_mailbox_requests:
            return recent[0] + GRAPH_MAILBOX_WINDOW_SECONDS - now
        recent.append(now)
        return None

    def free_mailbox_slot(self, account: dict[str, Any]) -> None:
        if self.in_flight[account["id"]] > 0:
            self.in_flight[account["id"]] -= 1

    @staticmethod
    def mailbox_busy() -> JSONResponse:
        """Graph's answer to a request (or a batch step) over the mailbox's concurrency limit."""
        # Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
        return graph_error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                           {"Retry-After": "1"})

    def push(
        self,
        url: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        account: str | None = None,
        kind: str = "push",
    ) -> None:
        """POST a notification to the product without blocking the request being served."""

        async def deliver() -> None:
            status: int | str
            try:
                response = await asyncio.to_thread(
                    requests.post,
                    url,
                    json=json_body,
                    headers=headers or {},
                    timeout=10,
                    verify=str(self.ca_path) if self.ca_path else True,
                )
                status = response.status_code
            except requests.RequestException as exc:
                status = f"error: {exc.__class__.__name__}"
            self.store.log_request(
                {
                    "ts": time.time(),
                    "provider": None,
                    "method": "PUSH",
                    "path": url,
                    "query": "",
                    "status": status,
                    "account": account,
                    "operation": kind,
                }
            )

        task = asyncio.get_running_loop().create_task(deliver())
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    return None


class ObserveMiddleware:
    """Request log, per-account counters, injected faults and the providers' own limits."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store = self.sandbox.store
        path: str = scope["path"]
        method: str = scope["method"]
        provider = provider_of(path)
        account = None
        token = _bearer(scope)
        if token and provider:
            account = store.account_for_access_token(token, provider)
        scope.setdefault("state", {})["account"] = account
        email = account["email"] if account else None
        generation = store.generation
        entry: dict[str, Any] = {
            "ts": time.time(),
            "provider": provider,
            "method": method,
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": None,
            "account": email,
            "operation": None,
        }

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            fault = None
            if provider is not None:
                fault = store.take_fault(kinds=("status", "delay", "drop"), method=method, path=path, account=account)
                if fault is not None:
                    entry["fault"] = fault["id"]
                    if fault["kind"] == "drop" and not fault.get("after"):
                        entry["status"] = "dropped"
                        # Start a response that promises a body, then abort: the client sees the
                        # connection close mid-response, as with a real network drop.
                        await send(
                            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
                        )
                        raise ConnectionAbortedError("sandbox: injected dropped connection")
                    if fault["kind"] == "status" and not fault.get("after"):
                        response = fault_response(path, fault)
                        await response(scope, receive, send_logged)
                        return
            if api_of(path) == "graph" and self.sandbox.limits_enabled and method in ("POST", "PUT", "PATCH"):
                receive, too_large = await within_limit(receive, GRAPH_MAX_REQUEST_BYTES)
                if too_large:
                    response = graph_error(413, "BadRequest", "The maximum request length supported is 4MB.")
                    await response(scope, receive, send_logged)
                    return
            # A $batch is not a mailbox request itself: each of its steps is (sandbox/microsoft/users.py).
            limited = account is not None and path.startswith("/v1.0") and path != "/v1.0/$batch"
            if account is not None and limited and (wait := self.sandbox.over_mailbox_quota(account)) is not None:
                # Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
                await graph_error(429, "ApplicationThrottled", "Application is over its MailboxRequests limit.",
                                  {"Retry-After": str(max(1, math.ceil(wait)))})(scope, receive, send_logged)
                return
            if account is not None and limited and not self.sandbox.take_mailbox_slot(account):
                await self.sandbox.mailbox_busy()(scope, receive, send_logged)
                return
            try:
                if self.sandbox.latency_ms and provider is not None:
                    await asyncio.sleep(self.sandbox.latency_ms / 1000)
                if fault is not None and fault["kind"] == "delay":
                    # A slow request holds its concurrency slot, as a slow real one does.
                    await asyncio.sleep(float(fault.get("seconds", 1)))
                if fault is not None and fault["kind"] == "drop":
                    await self.serve_then_drop(scope, receive, send, entry)
                    return
                if fault is not None and fault["kind"] == "status":
                    await self.serve_then_fail(scope, receive, send, entry, fault)
                    return
                await self.app(scope, receive, send_logged)
            finally:
                if account is not None and limited:
                    self.sandbox.free_mailbox_slot(account)
        finally:
            entry["operation"] = scope["state"].get("operation")
            if "steps" in scope["state"]:
                entry["steps"] = scope["state"]["steps"]  # a Graph $batch's step statuses
            if entry["account"] is None and scope["state"].get("account"):
                # Calls authorised by their URL rather than a bearer token (an upload session).
                entry["account"] = scope["state"]["account"]["email"]
            if provider is not None or entry["operation"]:
                store.log_request(entry, generation=generation)


    async def serve_then_drop(self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        """A ``drop`` fault with ``after``: the request is served (a send goes out), then the
        connection closes mid-answer, so the client cannot tell whether it worked."""

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = f"dropped after {message['status']}"

        await self.app(scope, receive, swallow)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        raise ConnectionAbortedError("sandbox: injected dropped connection after serving the request")


    async def serve_then_fail(
        self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any], fault: dict[str, Any]
    ) -> None:
        """A ``status`` fault with ``after``: the request is served (a send goes out), then the
        client gets an error answer instead, as from a gateway in front of a slow backend that
        gives up (502, 503, 504) after the backend took the request."""

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["served"] = message["status"]

        await self.app(scope, receive, swallow)
        response = fault_response(scope["path"], fault)
        entry["status"] = response.status_code
        await response(scope, receive, send)


def check_latency(latency_ms: Any) -> float:
    try:
        value = float(latency_ms)
    except (TypeError, ValueError):
        raise ValueError("latency_ms must be a number of milliseconds") from None
    if not 0 <= value <= 60_000:
        raise ValueError("latency_ms must be between 0 and 60000")
    return value


def fault_response(path: str, fault: dict[str, Any]) -> Response:
    """A ``status`` fault's answer in the API's error shape: ``status`` (503 unless given), a
    ``Retry-After`` with ``retry_after``, and ``reason`` as Graph's error code or Google's reason
    (e.g. a 403 ``userRateLimitExceeded``)."""
    headers = {} if fault.get("retry_after") is None else {"Retry-After": str(fault["retry_after"])}
    return error_for_path(path, int(fault.get("status", 503)), fault.get("message", ""), headers,
                          reason=fault.get("reason"))


async def within_limit(receive: Receive, limit: int) -> tuple[Receive, bool]:
    """Read the whole request body; whether it is over ``limit`` bytes, and a ``receive`` that
    hands the body to the app again. The body is read to its end even when too large, so the
    client gets the error answer rather than a connection closed under its upload."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size <= limit:
            chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay, size > limit


# -- control API ----------------------------------------------------------------------


def control_routes(sandbox: Sandbox) -> list[BaseRoute]:
    store = sandbox.store

    def account_or_404(request: Request) -> dict[str, Any]:
        provider = request.path_params["provider"]
        account = store.find_account(provider, request.path_params["email"]) if provider in PROVIDERS else None
        if account is None:
            raise LookupError(f"no {provider} account {request.path_params['email']}")
        return account

    def public(account: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in account.items() if k != "data"}

    async def reset(request: Request) -> Response:
        store.reset()
        sandbox.reset_limits()
        return JSONResponse({"ok": True})

    async def accounts(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"accounts": [public(a) for a in store.accounts.values()]})
        spec = await request.json()
        account = store.create_account(**spec)
        sandbox.emulators[account["provider"]].setup_account(account)
        return JSONResponse(public(account), status_code=201)

    async def account_detail(request: Request) -> Response:
        account = account_or_404(request)
        if request.method == "DELETE":
            store.delete_account(account)
            return Response(status_code=204)
        if request.method == "PATCH":
            changes = await request.json()
            for key in ("display_name", "password", "mfa", "mfa_code", "kind"):
                if key in changes:
                    account[key] = changes[key]
        return JSONResponse(public(account))

    async def messages(request: Request) -> Response:
        account = account_or_404(request)
        spec = await request.json()
        raw = base64.b64decode(spec["raw_base64"]) if "raw_base64" in spec else spec["raw"].encode("utf-8")
        result = sandbox.emulators[account["provider"]].put_message(account, folder=spec["folder"], raw=raw)
        return JSONResponse(result, status_code=201)

    async def mailbox(request: Request) -> Response:
        account = account_or_404(request)
        return JSONResponse(sandbox.emulators[account["provider"]].mailbox(account))

    def move(account: dict[str, Any], message_id: str, folder: str) -> dict[str, Any]:
        try:
            return sandbox.emulators[account["provider"]].move_message(account, message_id, folder=folder)
        except Exception as exc:  # the emulators raise their API's own "not found"
            if isinstance(exc, LookupError):
                raise
            raise LookupError(f"no message {message_id!r} or folder {folder!r}") from exc

    async def move_message(request: Request) -> Response:
        account = account_or_404(request)
        spec = await request.json()
        return JSONResponse(move(account, request.path_params["message_id"], spec["folder"]))

    async def mail_page(request: Request) -> Response:
        """A bare mailbox view, so someone trying the product can "drag" mail into Aspire."""
        account = account_or_404(request)
        if request.method == "POST":
            # A plain urlencoded form: parsed here rather than adding a multipart parser dependency.
            form = urllib.parse.parse_qs((await request.body()).decode())
            move(account, form["message_id"][0], form["folder"][0])
            return RedirectResponse(str(request.url), status_code=303)
        folders = sandbox.emulators[account["provider"]].mailbox(account)["folders"]
        names = {f["name"].lower() for f in folders}
        shown = [f for f in folders if f["name"].lower() in ("inbox", "aspire", "processed", "sent items", "sent")]
        rows = []
        for folder in shown:
            items = []
            for message in folder["messages"]:
                button = ""
                if folder["name"].lower() == "inbox" and "aspire" in names:
                    button = (
                        "<form method='post' style='display:inline'>"
                        f"<input type='hidden' name='message_id' value='{html.escape(message['id'], quote=True)}'>"
                        "<input type='hidden' name='folder' value='Aspire'>"
                        "<button type='submit'>Move to Aspire</button></form>"
                    )
                items.append(f"<li>{html.escape(message['subject'] or '(no subject)')} {button}</li>")
            rows.append(f"<h2>{html.escape(folder['name'])} ({len(folder['messages'])})</h2><ul>{''.join(items)}</ul>")
        hint = "" if "aspire" in names else (
            "<p><em>The Aspire folder appears once Sync Aspire Folder is on in Aspire and the first sync "
            "has run.</em></p>")
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(account['email'])}</title>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
            "<body style='font-family:system-ui;max-width:720px;margin:2rem auto;padding:0 1rem'>"
            f"<h1>Sandbox mailbox: {html.escape(account['email'])}</h1>{hint}{''.join(rows)}</body></html>"
        )
        return HTMLResponse(body)

    async def events(request: Request) -> Response:
        account = account_or_404(request)
        emulator = sandbox.emulators[account["provider"]]
        if request.method == "GET":
            return JSONResponse({"events": emulator.events(account)})
        return JSONResponse(emulator.put_event(account, await request.json()), status_code=201)

    async def event_detail(request: Request) -> Response:
        account = account_or_404(request)
        emulator = sandbox.emulators[account["provider"]]
        event_id = request.path_params["event_id"]
        if request.method == "DELETE":
            emulator.delete_event(account, event_id)
            return Response(status_code=204)
        return JSONResponse(emulator.change_event(account, event_id, await request.json()))

    async def respond(request: Request) -> Response:
        account = account_or_404(request)
        attendee, response = check_response(await request.json())
        emulator = sandbox.emulators[account["provider"]]
        return JSONResponse(emulator.respond(account, request.path_params["event_id"], attendee, response))

    async def busy(request: Request) -> Response:
        """Hold some of a Microsoft mailbox's concurrent Graph requests for a while, as other work of
        the same application on that mailbox would (a send, a calendar sync running meanwhile)."""
        account = account_or_404(request)
        if account["provider"] != "microsoft":
            raise ValueError("only Graph limits concurrent requests per mailbox")
        spec = await request.json()
        held, seconds = int(spec.get("requests", 1)), float(spec.get("seconds", 1))
        if not 1 <= held <= GRAPH_MAILBOX_CONCURRENCY or seconds <= 0:
            raise ValueError(f"requests must be 1 to {GRAPH_MAILBOX_CONCURRENCY} and seconds positive")
        taken = sum(sandbox.take_mailbox_slot(account) for _ in range(held))

        def release() -> None:
            for _ in range(taken):
                sandbox.free_mailbox_slot(account)

        asyncio.get_running_loop().call_later(seconds, release)
        return JSONResponse({"held": taken, "seconds": seconds})

    async def expire_sync_state(request: Request) -> Response:
        account = account_or_404(request)
        sandbox.emulators[account["provider"]].expire_sync_state(account)
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": store.faults})
        if request.method == "DELETE":
            store.faults.clear()
            return Response(status_code=204)
        spec = await request.json()
        specs = spec if isinstance(spec, list) else [spec]
        return JSONResponse({"faults": [store.add_fault(s) for s in specs]}, status_code=201)

    async def request_log(request: Request) -> Response:
        email = request.query_params.get("account")
        since = float(request.query_params.get("since", 0))
        entries = [
            e for e in store.request_log if e["ts"] >= since and (email is None or e["account"] == email.lower())
        ]
        return JSONResponse({"requests": entries})

    async def counters(request: Request) -> Response:
        return JSONResponse({"counters": {k: dict(v) for k, v in store.counters.items()}})

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            spec = await request.json()
            sandbox.limits_enabled = bool(spec.get("enabled", True))
            if "graph_sends_per_minute" in spec:
                per_minute = int(spec["graph_sends_per_minute"])
                if per_minute < 1:
                    raise ValueError("graph_sends_per_minute must be at least 1")
                sandbox.graph_sends_per_minute = per_minute
            if "graph_mailbox_requests_per_10_minutes" in spec:
                per_window = int(spec["graph_mailbox_requests_per_10_minutes"])
                if per_window < 1:
                    raise ValueError("graph_mailbox_requests_per_10_minutes must be at least 1")
                sandbox.graph_mailbox_requests = per_window
            if "gmail_rate_limit_status" in spec:
                status = int(spec["gmail_rate_limit_status"])
                if status not in GMAIL_RATE_LIMIT_STATUSES:
                    raise ValueError(f"gmail_rate_limit_status must be one of {GMAIL_RATE_LIMIT_STATUSES}")
                sandbox.gmail_rate_limit_status = status
        return JSONResponse({"enabled": sandbox.limits_enabled,
                             "graph_sends_per_minute": sandbox.graph_sends_per_minute,
                             "graph_mailbox_requests_per_10_minutes": sandbox.graph_mailbox_requests,
                             "gmail_rate_limit_status": sandbox.gmail_rate_limit_status})

    async def latency(request: Request) -> Response:
        if request.method == "POST":
            spec = await request.json()
            if not isinstance(spec, dict) or "latency_ms" not in spec:
                raise ValueError('give {"latency_ms": N}')
            sandbox.latency_ms = check_latency(spec["latency_ms"])
        return JSONResponse({"latency_ms": sandbox.latency_ms})

    async def clones(request: Request) -> Response:
        """Accounts made as copies of one (its folders, labels, mail and sync state), each with its
        own tokens for every grant the original holds: a benchmark's thousands of mailboxes
        without a sign-in each. Answers each clone's tokens keyed by the original's."""
        template = account_or_404(request)
        spec = await request.json()
        emails = spec.get("emails") if isinstance(spec, dict) else None
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails) or len(emails) > 100_000:
            raise ValueError('give {"emails": [up to 100,000 addresses]}')
        return JSONResponse({"clones": store.clone_accounts(template, emails)}, status_code=201)

    async def pubsub_topic(request: Request) -> Response:
        """A push subscription on the topic: where to push, and (as Pub/Sub's pushConfig.oidcToken)
        the service account and audience of the token each push carries."""
        # Reference: https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions#oidctoken
        topic = request.path_params["topic"]
        spec = await request.json()
        if not isinstance(spec, dict) or not isinstance(spec.get("push_endpoint"), str):
            raise ValueError("push_endpoint (a URL) is required")
        fields = ("push_endpoint", "service_account_email", "audience")
        config = {key: str(spec[key]) for key in fields if spec.get(key)}
        store.settings["push_endpoints"][topic] = config
        return JSONResponse({"topic": topic, **config})

    async def ca(request: Request) -> Response:
        if sandbox.ca_path is None:
            return JSONResponse({"error": "no CA"}, status_code=404)
        return FileResponse(sandbox.ca_path, media_type="application/x-pem-file")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "accounts": len(store.accounts)})

    base = "/_sandbox"
    acct = base + "/accounts/{provider}/{email}"
    return [
        Route(base + "/health", health),
        Route(base + "/ca.pem", ca),
        Route(base + "/reset", reset, methods=["POST"]),
        Route(base + "/accounts", accounts, methods=["GET", "POST"]),
        Route(acct, account_detail, methods=["GET", "PATCH", "DELETE"]),
        Route(acct + "/messages", messages, methods=["POST"]),
        Route(acct + "/mailbox", mailbox, methods=["GET"]),
        Route(acct + "/messages/{message_id}/move", move_message, methods=["POST"]),
        Route(base + "/mail/{provider}/{email}", mail_page, methods=["GET", "POST"]),
        Route(acct + "/events", events, methods=["GET", "POST"]),
        Route(acct + "/events/{event_id}", event_detail, methods=["PATCH", "DELETE"]),
        Route(acct + "/events/{event_id}/respond", respond, methods=["POST"]),
        Route(acct + "/expire-sync-state", expire_sync_state, methods=["POST"]),
        Route(acct + "/busy", busy, methods=["POST"]),
        Route(acct + "/clones", clones, methods=["POST"]),
        Route(base + "/latency", latency, methods=["GET", "POST"]),
        Route(base + "/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(base + "/requests", request_log, methods=["GET"]),
        Route(base + "/counters", counters, methods=["GET"]),
        Route(base + "/limits", limits, methods=["GET", "POST"]),
        Route(base + "/pubsub/topics/{topic:path}", pubsub_topic, methods=["PUT"]),
    ]


def create_app(sandbox: Sandbox) -> ASGIApp:
    routes: list[BaseRoute] = control_routes(sandbox)
    for emulator in sandbox.emulators.values():
        routes.extend(emulator.routes())

    async def value_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def lookup_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def no_route(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status not in (404, 405):
            return JSONResponse({"error": str(exc)}, status_code=status)
        return unknown_route(request.url.path, request.method, status)

    app = Starlette(
        routes=routes,
        exception_handlers={ValueError: value_error, LookupError: lookup_error, KeyError: value_error,
                            HTTPException: no_route},
    )
    return ObserveMiddleware(app, sandbox)
