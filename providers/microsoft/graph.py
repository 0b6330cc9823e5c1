"""A small Microsoft Graph client on ``requests``: bearer auth, immutable ids, timeouts, and Graph's
errors turned into ``providers.errors``.

It never retries: retries, with the ``retry_after`` every provider error carries, belong to the
caller (the Celery tasks), which knows the mailbox's backoff and concurrency budget.
"""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from ..errors import ProviderError, SendOutcomeUnknown, SyncStateExpired, TransientError
from ..http import error_for_status

# Reference: https://learn.microsoft.com/en-us/graph/outlook-immutable-id
# Without it a message's id changes when it moves to another folder; the header applies only to the
# request that carries it, so every request (and every step of a batch) sends it.
IMMUTABLE_IDS = 'IdType="ImmutableId"'
# Reference: https://learn.microsoft.com/en-us/graph/json-batching#batch-size-limitations
MAX_BATCH_STEPS = 20
STREAM_CHUNK = 64 * 1024
SYNC_STATE_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
# Timeouts, and a dropped connection: ConnectionError or ChunkedEncodingError, depending on when it drops.
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class _DefaultTimeoutAdapter(HTTPAdapter):
    """Applies a timeout to requests that set none, msal's included (msal passes no timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request, stream=stream, timeout=self.default_timeout if timeout is None else timeout,
            verify=verify, cert=cert, proxies=proxies,
        )


def build_session(*, ca_bundle: str | None, timeout: float) -> requests.Session:
    """One session per provider, shared by msal and the Graph client (one connection pool)."""
    session = requests.Session()
    # REQUESTS_CA_BUNDLE and proxy variables in the environment would otherwise override ``verify``.
    session.trust_env = False
    session.verify = ca_bundle or True
    adapter = _DefaultTimeoutAdapter(timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def segment(value: str) -> str:
    """An id as one URL path segment (Graph ids may hold characters such as ``=``)."""
    return quote(value, safe="")


def error_from_response(status: int, headers: Mapping[str, str] | None, body: Any, *,
                        may_repeat: bool = True) -> ProviderError:
    """The provider error for a Graph error answer (a whole response or one batch step)."""
    # Reference: https://learn.microsoft.com/en-us/graph/errors
    error = body.get("error") if isinstance(body, dict) else None
    documented = isinstance(error, dict)
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    detail = f"Graph {status} {code}: {message}".strip()
    if code.lower() in SYNC_STATE_CODES and status < 500:
        return SyncStateExpired(detail)
    return error_for_status(status, headers, detail, may_repeat=may_repeat, documented=documented)


# Holds that many of the mailbox's concurrent requests while a block runs (waiting for them).
Slots = Callable[[int], AbstractContextManager[None]]
# The same for any mailbox: (a key of the mailbox, how many) -> the block's hold. The application
# gives one that all its workers share (Graph counts the app's requests per mailbox, wherever
# they come from); without one, nothing is held here and Graph's 429 answers are the limit.
ConcurrencyGate = Callable[[str, int], AbstractContextManager[None]]


def no_slots(count: int) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


class GraphClient:
    """Graph calls on behalf of one access token. Cheap: made per operation, sharing the session.

    Every request holds one of the mailbox's concurrent-request slots while it is in flight (a
    ``$batch`` one per step it runs at once), through ``slots``.
    Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
    """

    def __init__(self, session: requests.Session, base_url: str, access_token: str, *,
                 slots: Slots = no_slots) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.slots = slots

    def url(self, path_or_link: str) -> str:
        """A path under the Graph root, or a link Graph gave us (``@odata.nextLink``)."""
        if path_or_link.startswith(("https://", "http://")):
            # Only ever send the bearer token back to Graph itself.
            if not path_or_link.startswith(self.base_url + "/"):
                raise ValueError("the link does not point at the configured Graph root")
            return path_or_link
        return f"{self.base_url}/{path_or_link.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        may_repeat: bool = True,
        slots: int = 1,
    ) -> requests.Response:
        """Send one request; a non-2xx answer raises the mapped ``ProviderError``.

        ``may_repeat=False`` is for requests that must not be sent twice (sending mail): a failure
        after the request may have left raises ``SendOutcomeUnknown`` instead of ``TransientError``.
        ``slots``: the mailbox's concurrent requests it holds until answered (0: the caller holds
        them, as for a streamed body read afterwards).
        """
        all_headers = {
            "Authorization": f"Bearer {self.access_token}",
            "Prefer": IMMUTABLE_IDS,
            "Accept": "application/json",
            **(headers or {}),
        }
        try:
            with self.slots(slots) if slots else contextlib.nullcontext():
                response = self.session.request(
                    method, self.url(path), params=params, json=json, data=data, headers=all_headers, stream=stream
                )
        except NETWORK_ERRORS as exc:
            # A connect timeout is the one failure that proves nothing was sent.
            if not may_repeat and not isinstance(exc, requests.ConnectTimeout):
                raise SendOutcomeUnknown(f"{method} {path}: {exc.__class__.__name__}") from exc
            raise TransientError(f"{method} {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except (ValueError, *NETWORK_ERRORS):
                body = None
            finally:
                response.close()
            raise error_from_response(response.status_code, response.headers, body, may_repeat=may_repeat)
        return response

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        return self._json(self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any, *, slots: int = 1) -> dict[str, Any]:
        return self._json(self.request("POST", path, json=body, slots=slots))

    def post_mime(self, path: str, mime: bytes, *, may_repeat: bool = True) -> dict[str, Any]:
        """POST a message as MIME: base64 in a text/plain body, as Graph takes it."""
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-send-mime-message
        return self._json(self.request("POST", path, data=base64.b64encode(mime),
                                       headers={"Content-Type": "text/plain"}, may_repeat=may_repeat))

    def pages(self, path: str, params: Mapping[str, str | int] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` (one request per page)."""
        # Reference: https://learn.microsoft.com/en-us/graph/paging
        link: str | None = path
        first = True
        while link:
            body = self.get_json(link, params if first else None)
            first = False
            yield from body.get("value", [])
            link = body.get("@odata.nextLink")

    def download(self, path: str) -> bytes:
        """A binary body read in chunks into one buffer, so a large message is held once, not twice
        (``response.content`` would join a list of chunks; ``BytesIO.getvalue`` hands over its buffer)."""
        with self.slots(1):  # until the whole body is read
            response = self.request("GET", path, headers={"Accept": "*/*"}, stream=True, slots=0)
            buffer = io.BytesIO()
            try:
                for chunk in response.iter_content(chunk_size=STREAM_CHUNK):
                    buffer.write(chunk)
            except NETWORK_ERRORS as exc:
                raise TransientError(f"GET {path}: {exc.__class__.__name__}") from exc
            finally:
                response.close()
        return buffer.getvalue()

    def upload_range(self, upload_url: str, chunk: bytes, *, start: int, total: int) -> None:
        """PUT one byte range of a file to an attachment upload session. The URL is pre-authorised
        (it lives on Outlook's own host, not under the Graph root): no bearer token goes with it."""
        # Reference: https://learn.microsoft.com/en-us/graph/outlook-large-attachments#step-2-use-the-upload-session-to-upload-a-range-of-bytes-of-the-file
        if not upload_url.startswith("https://"):
            raise ValueError("an upload session URL must be https")
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}"}
        try:
            response = self.session.put(upload_url, data=chunk, headers=headers)
        except NETWORK_ERRORS as exc:
            raise TransientError(f"upload range {start}: {exc.__class__.__name__}") from exc
        with response:
            if response.status_code >= 400:
                try:
                    body = response.json()
                except (ValueError, *NETWORK_ERRORS):
                    body = None
                raise error_from_response(response.status_code, response.headers, body)

    def batch(self, steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Run up to 20 requests in one ``$batch``; the answers by step id."""
        # Reference: https://learn.microsoft.com/en-us/graph/json-batching
        if len(steps) > MAX_BATCH_STEPS:
            raise ValueError(f"a Graph batch holds at most {MAX_BATCH_STEPS} requests")
        # The envelope is not a mailbox request; the steps without dependsOn run at once, each
        # taking a slot, and the others one at a time after them.
        # Reference: https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
        at_once = max(1, sum(1 for step in steps if not step.get("dependsOn")))
        body = self.post_json("/$batch", {"requests": steps}, slots=at_once)
        return {str(answer.get("id")): answer for answer in body.get("responses", [])}

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            raise TransientError(f"Graph answered {response.status_code} with a body that is not JSON") from exc
        except NETWORK_ERRORS as exc:
            raise TransientError(f"reading Graph's answer: {exc.__class__.__name__}") from exc
        if not isinstance(body, dict):
            raise TransientError("Graph answered with JSON that is not an object")
        return body
