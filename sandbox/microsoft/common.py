"""Pieces every Microsoft module shares: per-account state, Graph handler plumbing, ids, dates."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import graph_error

if TYPE_CHECKING:
    from ..app import Sandbox

Json = dict[str, Any]
Handler = Callable[[Any, Request], Awaitable[Response]]
GraphHandler = Callable[[Any, Request, Json], Awaitable[Response]]

PROVIDER = "microsoft"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
# The query parameters Graph handlers read, by their documented spelling. Graph takes their names
# in any case (``$TOP``, ``startdatetime``); each may be given once.
# Reference: https://learn.microsoft.com/en-us/graph/query-parameters
QUERY_PARAMETERS = ("$select", "$top", "$skip", "$filter", "$orderby", "$expand", "$count", "$search",
                    "$format", "$skiptoken", "$deltatoken", "startDateTime", "endDateTime",
                    "includeHiddenFolders")
_CANONICAL_QUERY = {name.lower(): name for name in QUERY_PARAMETERS}
# What the sandbox models of each Graph type a $select may name: type name -> property names.
# A $select of anything else is refused rather than silently dropped (see ``selected_fields``).
MODELLED_PROPERTIES: dict[str, frozenset[str]] = {}


class GraphError(Exception):
    """Raised inside a Graph handler; rendered in Graph's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", what)


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def graph(operation: str) -> Callable[[GraphHandler], Handler]:
    """Wrap a Graph handler method: require a signed-in mailbox, name the operation for the counters,
    and turn GraphError into Graph's error body."""

    def decorate(handler: GraphHandler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(self: Any, request: Request) -> Response:
            request.scope["state"]["operation"] = operation
            account = request.scope["state"].get("account")
            if account is None:
                return graph_error(
                    401, "InvalidAuthenticationToken",
                    "Access token is empty, expired or was revoked.",
                    {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
                )
            try:
                canonical_query(request)
                return await handler(self, request, account)
            except GraphError as exc:
                return graph_error(exc.status, exc.code, exc.message)

        return wrapper

    return decorate


def data_of(account: Json) -> Json:
    return account["data"][PROVIDER]


def new_graph_id(prefix: str) -> str:
    # Graph ids are long opaque URL-safe strings; the prefix only hints at the kind of object.
    return prefix + secrets.token_hex(20)


def new_change_key() -> str:
    return secrets.token_urlsafe(12)


def etag(change_key: str) -> str:
    return f'W/"{change_key}"'


# -- request parsing -----------------------------------------------------------------------

def prefer(request: Request) -> dict[str, str]:
    """The ``Prefer`` header as {lower-case name: value without quotes}."""
    preferences: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            if name:
                preferences[name.strip().lower()] = value.strip().strip('"')
    return preferences


def wants_immutable_ids(request: Request) -> bool:
    # Reference: https://learn.microsoft.com/en-us/graph/outlook-immutable-id
    return prefer(request).get("idtype", "").lower() == "immutableid"


def page_size(request: Request, default: int = DEFAULT_PAGE_SIZE) -> int:
    raw = request.query_params.get("$top") or prefer(request).get("odata.maxpagesize")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid page size '{raw}'.") from exc
    if size < 1:
        raise bad_request("The page size must be a positive number.")
    return min(size, MAX_PAGE_SIZE)


def offset_page(request: Request, items: list[Any]) -> tuple[list[Any], str | None]:
    """One ``$top``/``$skip`` page of a collection and the ``@odata.nextLink`` to the rest (None at the end)."""
    size = page_size(request)
    raw_skip = request.query_params.get("$skip", "0")
    if not raw_skip.isdigit():
        raise bad_request(f"Invalid $skip value '{raw_skip}'.")
    skip = int(raw_skip)
    next_link = None
    if skip + size < len(items):
        next_link = str(request.url.include_query_params(**{"$skip": skip + size, "$top": size}))
    return items[skip:skip + size], next_link


def canonical_query(request: Request) -> None:
    """Spell the request's known query parameter names as Graph documents them, before anything
    reads them; a parameter given twice is refused as Graph refuses it."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    if not raw:
        return
    pairs = parse_qsl(raw, keep_blank_values=True)
    seen: set[str] = set()
    renamed = False
    for index, (name, value) in enumerate(pairs):
        canonical = _CANONICAL_QUERY.get(name.lower())
        if canonical is None:
            continue
        if canonical in seen:
            raise bad_request(f"Query option '{canonical}' was specified more than once, but it must be specified "
                              "at most once.")
        seen.add(canonical)
        if canonical != name:
            pairs[index] = (canonical, value)
            renamed = True
    if renamed:
        request.scope["query_string"] = urlencode(pairs, quote_via=quote).encode("latin-1")


def model_properties(type_name: str, properties: Iterable[str]) -> None:
    """Declare what the sandbox serves of a Graph type, for ``$select``."""
    MODELLED_PROPERTIES[type_name] = frozenset(properties)


def selected_fields(request: Request, type_name: str | None = None) -> set[str] | None:
    """The property names of ``$select``. With ``type_name`` (one declared with
    ``model_properties``) each must be a property the sandbox models, matched without regard to
    case and returned in its documented spelling; any other is a 400, as Graph answers a property
    it does not know, so a test can't believe it read a field the sandbox never serves."""
    raw = request.query_params.get("$select")
    if not raw:
        return None
    names = {name.strip() for name in raw.split(",") if name.strip()}
    known = MODELLED_PROPERTIES.get(type_name or "")
    if known is None:
        return names
    spelled = {name.lower(): name for name in known}
    unknown = sorted(name for name in names if name.lower() not in spelled)
    if unknown:
        raise bad_request(f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.{type_name}'.")
    return {spelled[name.lower()] for name in names}


def apply_select(item: Json, fields: set[str] | None) -> Json:
    """Graph always returns ``id`` and the etag, whatever ``$select`` says."""
    if fields is None:
        return item
    return {k: v for k, v in item.items() if k in fields or k in ("id", "@odata.etag", "@odata.type")}


async def json_body(request: Request) -> Json:
    body = await request.body()
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise bad_request("Unable to read JSON request payload.", "RequestBodyRead") from exc
    if not isinstance(parsed, dict):
        raise bad_request("The request body must be a JSON object.", "RequestBodyRead")
    return parsed


def graph_json(body: Json, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type="application/json")


def accepted() -> Response:
    return Response(status_code=202)


def graph_url(sandbox: Sandbox, path: str) -> str:
    return f"{sandbox.base_url}/v1.0/{path.lstrip('/')}"


def context(sandbox: Sandbox, fragment: str) -> str:
    return f"{sandbox.base_url}/v1.0/$metadata#{fragment}"


# -- dates ---------------------------------------------------------------------------------

def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso_z(moment: dt.datetime) -> str:
    """Graph's UTC timestamps on mail: ``2026-12-01T09:00:00Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """Parse Graph date-times, which carry up to seven fractional digits and maybe a Z."""
    text = text.strip().replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"Cannot parse date-time '{text}'.") from exc
