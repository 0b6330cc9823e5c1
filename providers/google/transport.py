"""HTTP for the Google API clients, and the one place Google's failures become ``providers.errors``.

Nothing here retries: ``execute`` runs with ``num_retries=0`` and the caller's tasks own retries and
backoff. Two retries happen inside the libraries and are left alone, being bounded and safe:
google-auth makes up to three attempts at the token endpoint on a 5xx or 429, a few seconds in all,
and the authorized httplib2 client answers a 401 by refreshing the access token and repeating the
call (at most twice).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from providers.errors import AuthRevoked, NotFound, ProviderError, Throttled, TransientError
from providers.http import error_for_status, retry_after_of

from . import quota

CONFIGURATION_REFUSED = (
    "Google refused Aspire's own sign-in details, so syncing has stopped for now. Your administrator needs to "
    "check Aspire's Google configuration; nothing needs to change in your mailbox."
)
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
API_VERSIONS = {"gmail": "v1", "calendar": "v3"}
NETWORK_ERRORS = (
    google.auth.exceptions.TransportError,  # a token request that never got an answer
    requests.RequestException,
    httplib2.HttpLib2Error,
    http.client.HTTPException,  # a response cut short (IncompleteRead, RemoteDisconnected)
    OSError,  # timeouts, refused or reset connections, TLS failures
)
# Failures that prove a request never reached Google: a token refresh that failed (it comes first),
# an unknown host, a refused connection.
NOTHING_SENT_ERRORS = (
    google.auth.exceptions.TransportError,
    requests.RequestException,
    httplib2.ServerNotFoundError,
    ConnectionRefusedError,
)


class AnswerLost(http.client.HTTPException):
    """The connection closed before any answer came: the request may have been acted on."""


class _NoResend(http.client.HTTPConnection):
    """httplib2 sends a request again when the first answer on a connection is missing (it takes
    that for a stale keep-alive connection), whatever the method. A send must not be repeated
    unseen, so here a missing answer is an error of its own, which httplib2 passes on."""

    def getresponse(self) -> http.client.HTTPResponse:
        try:
            return super().getresponse()
        except (http.client.BadStatusLine, http.client.ResponseNotReady) as exc:
            raise AnswerLost(f"{type(exc).__name__}: the connection closed before an answer") from exc


class _NoResendHTTPSConnection(_NoResend, httplib2.HTTPSConnectionWithTimeout):
    pass


class _NoResendHTTPConnection(_NoResend, httplib2.HTTPConnectionWithTimeout):
    pass


class SingleAttemptHttp(httplib2.Http):
    """An ``httplib2.Http`` that never repeats a request by itself (see ``_NoResend``).
    Each client gets new connections, so there is no stale keep-alive connection to recover from."""

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None,
                redirections: int = httplib2.DEFAULT_MAX_REDIRECTS, connection_type: Any = None) -> Any:
        if connection_type is None:
            secure = uri.lower().startswith("https:")
            connection_type = _NoResendHTTPSConnection if secure else _NoResendHTTPConnection
        return super().request(uri, method, body=body, headers=headers, redirections=redirections,
                               connection_type=connection_type)


def client_options(api_endpoint: str | None, api: str) -> dict[str, str] | None:
    if api_endpoint is None:
        return None
    base = api_endpoint.rstrip("/")
    # api_endpoint replaces the discovery document's whole base URL, servicePath included: Gmail's
    # servicePath is empty (its method paths start with gmail/v1/), Calendar's is calendar/v3/.
    return {"api_endpoint": base if api == "gmail" else f"{base}/calendar/v3/"}


# A thread's kept client closes its connections when it has been idle this long, so a request never
# meets a keep-alive connection the server has already closed (servers keep them seconds to minutes).
KEEP_ALIVE_SECONDS = 4.0


@dataclass
class _KeptClient:
    http: google_auth_httplib2.AuthorizedHttp
    service: Any
    last_used: float = 0.0
    in_use: bool = False


_kept = threading.local()


@contextlib.contextmanager
def api_service(api: str, credentials: Credentials, *, api_endpoint: str | None, ca_bundle: str | None,
                timeout: float, single_attempt: bool = False) -> Iterator[Any]:
    """A Gmail or Calendar client for one grant.

    httplib2 connections are not thread-safe, so clients are never shared between threads
    (https://googleapis.github.io/google-api-python-client/docs/thread_safety.html). Each thread
    keeps one client per API and endpoint and lends it to one use at a time with that use's
    credentials: the discovery document is parsed once per thread, not per run, and an hourly
    sweep's runs on a thread reuse its open connection instead of a TLS handshake each.
    ``single_attempt`` is for requests that must not be repeated unseen (sending mail): such a
    client is new, with new connections, and closed afterwards."""
    if single_attempt:
        with _new_service(api, credentials, SingleAttemptHttp(ca_certs=ca_bundle, timeout=timeout),
                          api_endpoint) as service:
            yield service
        return
    clients: dict[tuple[Any, ...], _KeptClient] = _kept.__dict__.setdefault("clients", {})
    key = (api, api_endpoint, ca_bundle, timeout)
    kept = clients.get(key)
    if kept is not None and kept.in_use:  # a client of this API already open on this thread
        with _new_service(api, credentials, httplib2.Http(ca_certs=ca_bundle, timeout=timeout),
                          api_endpoint) as service:
            yield service
        return
    if kept is None:
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(ca_certs=ca_bundle,
                                                                                   timeout=timeout))
        kept = clients[key] = _KeptClient(http, _build(api, http, api_endpoint))
    elif time.monotonic() - kept.last_used > KEEP_ALIVE_SECONDS:
        kept.http.http.close()
    kept.http.credentials, kept.in_use = credentials, True
    try:
        yield kept.service
    finally:
        kept.in_use, kept.last_used = False, time.monotonic()
        kept.http.credentials = None  # the grant's tokens are not kept past their use


@contextlib.contextmanager
def _new_service(api: str, credentials: Credentials, http: httplib2.Http, api_endpoint: str | None) -> Iterator[Any]:
    service = _build(api, google_auth_httplib2.AuthorizedHttp(credentials, http=http), api_endpoint)
    try:
        yield service
    finally:
        service.close()


def _build(api: str, http: google_auth_httplib2.AuthorizedHttp, api_endpoint: str | None) -> Any:
    # From the discovery document shipped with the library: no network.
    return build(api, API_VERSIONS[api], http=http, static_discovery=True,
                 client_options=client_options(api_endpoint, api))


def new_batch(service: Any, api: str, api_endpoint: str | None, callback: Any = None) -> BatchHttpRequest:
    """A batch for requests made with ``service`` (up to 100; each part answers for itself)."""
    if api_endpoint is None:
        return service.new_batch_http_request(callback=callback)
    # The library builds a batch URL from the discovery document's rootUrl, ignoring api_endpoint.
    batch_uri = f"{api_endpoint.rstrip('/')}/batch/{api}/{API_VERSIONS[api]}"
    return BatchHttpRequest(callback=callback, batch_uri=batch_uri)


def execute(request: Any) -> Any:
    """Run one API request, once, counting its Gmail quota units on this thread. A request that
    failed is counted too: we cannot tell whether it reached Google, so it is taken as spent."""
    try:
        return request.execute(num_retries=0)
    finally:
        quota.count_request(str(getattr(request, "methodId", "") or ""))


@contextlib.contextmanager
def google_errors() -> Iterator[None]:
    """Raise the library's and the network's exceptions as ``providers.errors``."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as error:
        translated = translate(error)
        if translated is None:
            raise
        raise translated from error


def translate(error: BaseException) -> ProviderError | None:
    if isinstance(error, HttpError):
        return from_http_error(error)
    if isinstance(error, google.auth.exceptions.RefreshError):
        return from_refresh_error(error)
    if isinstance(error, NETWORK_ERRORS):
        return TransientError(f"{type(error).__name__}: {error}"[:300])
    return None


def from_refresh_error(error: google.auth.exceptions.RefreshError) -> ProviderError:
    message = str(error.args[0]) if error.args else type(error).__name__
    # google-auth words token-endpoint errors as "<error>: <description>".
    if message.split(":", 1)[0].strip() == "invalid_grant":
        return AuthRevoked(f"refresh: {message}"[:300])
    if error.retryable:
        return TransientError(f"refresh: {message}"[:300])
    # invalid_client and the like: our configuration, not the user's grant, is wrong.
    return ProviderError(f"refresh: {message}"[:300], user_message=CONFIGURATION_REFUSED)


def from_http_error(error: HttpError, *, may_repeat: bool = True) -> ProviderError:
    status = int(error.status_code)
    reasons = error_reasons(error)
    detail = f"HTTP {status} {'/'.join(sorted(reasons))}: {error.reason}"[:300]
    # Reference: https://developers.google.com/workspace/gmail/api/guides/handle-errors
    if status == 403 and reasons & RATE_LIMIT_REASONS:
        return Throttled(detail, retry_after=retry_after_of(error.resp))
    if status == 403 and "insufficientPermissions" in reasons:
        return AuthRevoked(detail, user_message=(
            "Aspire no longer has every permission it needs for this mailbox. "
            "Please sign in again and allow all the requested access."))
    if status == 400 and str(error.reason).startswith("Invalid label"):
        return NotFound(detail)  # the label was deleted in Gmail since we learned its id
    # A 401 here comes after the authorized client has already refreshed the access token and
    # repeated the call; it is handled like any refused access token (renewed once by the run).
    return error_for_status(status, error.resp, detail, may_repeat=may_repeat, documented=_documented(error))


def _documented(error: HttpError) -> bool:
    """Whether the answer was in Google's error shape (``{"error": {"code": ..., "message": ...}}``)."""
    try:
        body = json.loads(error.content.decode("utf-8"))
    except (AttributeError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def error_reasons(error: HttpError) -> set[str]:
    details = error.error_details if isinstance(error.error_details, list) else []
    return {str(item["reason"]) for item in details if isinstance(item, dict) and item.get("reason")}
