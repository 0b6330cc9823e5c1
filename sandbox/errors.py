"""Error bodies in each API's own documented shape."""

from __future__ import annotations

import datetime as dt
import uuid

from starlette.responses import JSONResponse

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    413: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
GRAPH_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    409: "ErrorFolderExists",
    410: "SyncStateNotFound",
    412: "ErrorIrresolvableConflict",
    413: "BadRequest",
    416: "ErrorInvalidRange",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def api_of(path: str) -> str:
    """Which API a request path belongs to: graph, outlook (attachment upload sessions, on
    Outlook's own REST endpoint), google_api, google_oauth, ms_identity, control."""
    if path.startswith("/_sandbox"):
        return "control"
    if path.startswith("/v1.0"):
        return "graph"
    if path.startswith("/api/v2.0/"):
        return "outlook"
    if path.startswith(("/gmail/", "/calendar/", "/batch", "/upload/", "/resumable/upload/")):
        return "google_api"
    if path.startswith(("/o/oauth2", "/token", "/revoke", "/oauth2/")):
        return "google_oauth"
    return "ms_identity"


def provider_of(path: str) -> str | None:
    api = api_of(path)
    if api in ("graph", "outlook", "ms_identity"):
        return "microsoft"
    if api in ("google_api", "google_oauth"):
        return "google"
    return None


def graph_error(
    status: int, code: str | None = None, message: str = "", headers: dict[str, str] | None = None
) -> JSONResponse:
    # Reference: https://learn.microsoft.com/en-us/graph/errors
    body = {
        "error": {
            "code": code or GRAPH_CODES.get(status, "UnknownError"),
            "message": message or "The request failed.",
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def google_error(
    status: int, reason: str = "", message: str = "", domain: str = "global", headers: dict[str, str] | None = None
) -> JSONResponse:
    # Reference: https://cloud.google.com/apis/design/errors and the Gmail / Calendar error guides
    message = message or "The request failed."
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason or "backendError"}],
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def oauth_error(status: int, error: str, description: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    # Reference: RFC 6749 section 5.2; Microsoft adds error_codes, timestamp and trace ids.
    body: dict[str, object] = {"error": error, "error_description": description or error}
    return JSONResponse(body, status_code=status, headers=headers)


def error_for_path(path: str, status: int, message: str = "", headers: dict[str, str] | None = None, *,
                   reason: str | None = None) -> JSONResponse:
    """A generic error (used by injected faults) in the shape of the API the path belongs to.
    ``reason`` is Graph's error code or Google's reason, when the caller names one."""
    api = api_of(path)
    if api in ("graph", "outlook"):
        return graph_error(status, code=reason, message=message, headers=headers)
    if api == "google_api":
        reason = reason or {429: "rateLimitExceeded", 503: "backendError", 500: "backendError"}.get(status, "")
        # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
        # Rate limits are reported in the usageLimits domain, as 429 or as 403.
        domain = "usageLimits" if reason in RATE_LIMIT_REASONS else "global"
        return google_error(status, reason=reason, message=message, domain=domain, headers=headers)
    error = reason or {429: "temporarily_unavailable", 503: "temporarily_unavailable"}.get(status, "server_error")
    return oauth_error(status, error, message, headers=headers)


def unknown_route(path: str, method: str, status: int) -> JSONResponse:
    """The answer to a path (404) or method (405) nothing serves, in the shape of its API: a client
    reading errors as JSON gets JSON, never a bare "Not Found"."""
    api = api_of(path)
    if api == "graph":
        if status == 405:
            return graph_error(405, "BadRequest", "Specified HTTP method is not allowed for the request target.")
        # Reference: https://learn.microsoft.com/en-us/graph/errors
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{unknown_segment(path)}'.")
    if api == "outlook":
        return graph_error(status, "ErrorInvalidUrl" if status == 404 else "BadRequest",
                           f"The requested URL {path} is not served here.")
    if api == "google_api":
        # Google routes by method and path together: an unserved method is an unknown URL too.
        return google_error(404, "notFound", f"The requested URL {method} {path} was not found on this server.")
    if api == "control":
        return JSONResponse({"error": f"no control call {method} {path}"}, status_code=status)
    return oauth_error(status, "invalid_request", f"{method} {path} is not an endpoint of this service.")


def unknown_segment(path: str) -> str:
    """The segment Graph names when it cannot route a path: the last one, for the paths it serves."""
    segments = [segment for segment in path.removeprefix("/v1.0").split("/") if segment]
    return segments[-1] if segments else ""
