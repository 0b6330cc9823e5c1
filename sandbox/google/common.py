"""Pieces shared by the Google emulator's modules: API errors, the per-call wrapper, encodings."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import google_error

if TYPE_CHECKING:
    from . import GoogleEmulator

Json = dict[str, Any]
Handler = Callable[[Request, Json], Awaitable[Response]]


class ApiError(Exception):
    """An error a Gmail / Calendar handler answers with, in Google's JSON error shape."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.headers = headers

    def response(self) -> Response:
        return google_error(self.status, self.reason, self.message, self.domain, self.headers)


def bad_request(message: str, reason: str = "invalidArgument") -> ApiError:
    return ApiError(400, reason, message)


def not_found(message: str = "Requested entity was not found.") -> ApiError:
    return ApiError(404, "notFound", message)


# Any one of these granted scopes opens an API (the sandbox does not tell read from write scopes).
API_SCOPES = {
    "gmail": ("https://mail.google.com/", "https://www.googleapis.com/auth/gmail."),
    "calendar": ("https://www.googleapis.com/auth/calendar",),
}


def granted_scopes(request: Request, emulator: GoogleEmulator) -> list[str]:
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() != "bearer ":
        return []
    grant = emulator.store.access_tokens.get(authorization[7:].strip())
    return list(grant["scopes"]) if grant else []


def api_route(emulator: GoogleEmulator, path: str, handler: Handler, *, methods: list[str],
              operation: str) -> Route:
    """A Gmail / Calendar route: bearer account with a scope for the API required, the operation
    named for the counters, the per-user quota charged, and ``ApiError`` in Google's error shape."""
    needed = API_SCOPES[operation.split(".", 1)[0]]

    async def endpoint(request: Request) -> Response:
        request.scope["state"]["operation"] = operation
        account = request.scope["state"].get("account")
        if account is None:
            # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors#resolve_a_401_error_invalid_credentials
            return google_error(
                401, "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if not any(scope.startswith(needed) for scope in granted_scopes(request, emulator)):
            # Reference: https://developers.google.com/workspace/gmail/api/auth/scopes
            return google_error(403, "insufficientPermissions", "Request had insufficient authentication scopes.",
                                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
        try:
            emulator.quota.charge(account, operation)
            return await handler(request, account)
        except ApiError as error:
            return error.response()

    return Route(path, endpoint, methods=methods)


async def json_body(request: Request) -> Json:
    body = await request.body()
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise bad_request(f"Invalid JSON payload received. {exc}", "parseError") from exc
    if not isinstance(value, dict):
        raise bad_request("Invalid JSON payload received. Expected an object.", "parseError")
    return value


def ok(body: Json, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(moment: dt.datetime) -> str:
    """UTC with milliseconds and a Z, as Google writes ``updated`` / ``created``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def int_param(request: Request, name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid value '{raw}'. Values must match the following regular expression: '[0-9]+'",
                          "invalidParameter") from exc
    if value < low:
        raise bad_request(f"Invalid value '{raw}' for {name}: must be at least {low}.", "invalidParameter")
    return min(value, high) if high is not None else value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    return default if raw is None else raw.lower() == "true"
