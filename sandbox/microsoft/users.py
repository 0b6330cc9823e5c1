"""Graph user resources the product reads on connect and disconnect, and JSON batching."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Receive, Scope, Send

from ..errors import GRAPH_CODES, graph_error, unknown_route
from .common import (
    PROVIDER,
    Json,
    apply_select,
    bad_request,
    context,
    graph,
    graph_json,
    json_body,
    model_properties,
    selected_fields,
    utc_now,
)

if TYPE_CHECKING:
    from ..app import Sandbox

# Reference: https://learn.microsoft.com/en-us/graph/json-batching#batch-size-limitations
MAX_BATCH_REQUESTS = 20
# What Exchange reports as the mailbox's purpose for each kind of sandbox account that can sign in.
USER_PURPOSE = {"user": "user", "shared": "shared", "room": "room", "alias": "user"}
# Reference: https://learn.microsoft.com/en-us/graph/api/user-get (the default property set)
USER_DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                           "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/user (returned only on $select)
USER_SELECT_PROPERTIES = ("proxyAddresses", "mailNickname", "otherMails", "accountEnabled", "userType")
model_properties("user", USER_DEFAULT_PROPERTIES + USER_SELECT_PROPERTIES)
# Reference: https://learn.microsoft.com/en-us/graph/api/resources/mailboxsettings
model_properties("mailboxSettings", ("archiveFolder", "automaticRepliesSetting", "timeZone", "dateFormat", "timeFormat",
                                     "delegateMeetingMessageDeliveryOptions", "userPurpose", "language",
                                     "workingHours"))


class Users:
    def __init__(self, sandbox: Sandbox, graph_routes: Callable[[], list[BaseRoute]]) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.graph_routes = graph_routes
        self._batch_router: Router | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1.0/me", self.me, methods=["GET"]),
            Route("/v1.0/me/mailboxSettings", self.mailbox_settings, methods=["GET"]),
            Route("/v1.0/me/revokeSignInSessions", self.revoke_sign_in_sessions, methods=["POST"]),
            Route("/v1.0/$batch", self.batch, methods=["POST"]),
        ]

    @graph("me.get")
    async def me(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-get
        fields = selected_fields(request, "user")
        user = {
            "id": account["id"],
            "displayName": account["display_name"],
            "givenName": account["display_name"].split(" ")[0],
            "surname": account["display_name"].split(" ")[-1],
            "mail": account["email"],
            "userPrincipalName": account["email"],
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            # The mailbox's addresses: its primary as SMTP:, each alias (an account of kind alias
            # with alias_of pointing here) as smtp:.
            # Reference: https://learn.microsoft.com/en-us/graph/api/resources/user (proxyAddresses)
            "proxyAddresses": [f"SMTP:{account['email']}"] + [
                f"smtp:{other['email']}" for other in self.store.accounts.values()
                if other["provider"] == PROVIDER and other["kind"] == "alias"
                and other.get("alias_of") == account["email"]
            ],
            "mailNickname": account["email"].split("@")[0],
            "otherMails": [],
            "accountEnabled": True,
            "userType": "Member",
        }
        shown = fields if fields is not None else set(USER_DEFAULT_PROPERTIES)
        name = "users/$entity" if fields is None else f"users({','.join(sorted(fields))})/$entity"
        # Unlike most resources, a user selected gets no id unless it was asked for.
        return graph_json({"@odata.context": context(self.sandbox, name),
                           **{key: value for key, value in user.items() if key in shown}})

    @graph("mailboxSettings.get")
    async def mailbox_settings(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings
        hour = utc_now()  # the schedule runs a day from now
        fields = selected_fields(request, "mailboxSettings")
        return graph_json({
            "@odata.context": context(self.sandbox, f"users('{account['id']}')/mailboxSettings"),
            **apply_select(self.mailbox_settings_json(account, hour), fields),
        })

    @staticmethod
    def mailbox_settings_json(account: Json, hour: dt.datetime) -> Json:
        return {
            "archiveFolder": None,
            # Automatic replies off; the schedule is there all the same, as in the documented example.
            "automaticRepliesSetting": {
                "status": "disabled", "externalAudience": "all",
                "scheduledStartDateTime": {"dateTime": f"{hour:%Y-%m-%dT%H:00:00.0000000}", "timeZone": "UTC"},
                "scheduledEndDateTime": {"dateTime": f"{hour + dt.timedelta(days=1):%Y-%m-%dT%H:00:00.0000000}",
                                         "timeZone": "UTC"},
                "internalReplyMessage": "", "externalReplyMessage": "",
            },
            "timeZone": "UTC",
            "dateFormat": "M/d/yyyy",
            "timeFormat": "h:mm tt",
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "userPurpose": USER_PURPOSE.get(account["kind"], "others"),
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                "timeZone": {"name": "UTC"},
            },
        }

    @graph("me.revokeSignInSessions")
    async def revoke_sign_in_sessions(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions
        for table in (self.store.access_tokens, self.store.refresh_tokens):
            for token in [t for t, g in table.items() if g["account"] == account["id"] and g["provider"] == PROVIDER]:
                del table[token]
        return graph_json({"@odata.context": context(self.sandbox, "Edm.Boolean"), "value": True})

    # -- JSON batching ---------------------------------------------------------------------
    @graph("batch")
    async def batch(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/json-batching
        spec = await json_body(request)
        requests = spec.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("The batch request must contain a non-empty 'requests' array.", "BadRequest")
        if len(requests) > MAX_BATCH_REQUESTS:
            raise bad_request(f"Number of batch request steps exceeds the maximum value of {MAX_BATCH_REQUESTS}.",
                              "BadRequest")
        ids = [str(r.get("id", "")) for r in requests]
        # Ids are not case-sensitive.
        if any(not i for i in ids) or len({i.casefold() for i in ids}) != len(ids):
            raise bad_request("Every batch request needs a unique 'id'.", "BadRequest")
        check_dependencies(requests)
        return graph_json({"responses": await self.run_steps(request, account, requests)})

    async def run_steps(self, outer: Request, account: Json, steps: list[Json]) -> list[Json]:
        """Graph sends the steps without ``dependsOn`` on at once, each as a request to the mailbox:
        each takes one of its concurrent-request slots, and those that find none are answered 429
        with Retry-After while the others run. A step with ``dependsOn`` runs once the steps it
        names have, and fails with 424 if one of them failed."""
        # Reference: https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
        # Reference: https://learn.microsoft.com/en-us/graph/json-batching#sequencing-requests-with-the-dependson-property
        answers: dict[str, Json] = {}
        parallel = [step for step in steps if not step.get("dependsOn")]
        held = [self.sandbox.take_mailbox_slot(account) for _ in parallel]
        try:
            for step, slot in zip(parallel, held, strict=True):
                answer = await self.run_step(outer, account, step) if slot else None
                answers[str(step["id"]).casefold()] = answer or step_answer(step, self.sandbox.mailbox_busy())
        finally:
            for slot in held:
                if slot:
                    self.sandbox.free_mailbox_slot(account)
        waiting = [step for step in steps if step.get("dependsOn")]
        while waiting:
            ready = [step for step in waiting
                     if all(str(d).casefold() in answers for d in step["dependsOn"])]
            for step in ready:
                waiting.remove(step)
                failed = any(answers[str(d).casefold()]["status"] >= 400 for d in step["dependsOn"])
                if failed:
                    answers[str(step["id"]).casefold()] = step_answer(step, graph_error(
                        424, "FailedDependency", "A request this request depends on failed."))
                elif self.sandbox.take_mailbox_slot(account):
                    try:
                        answers[str(step["id"]).casefold()] = await self.run_step(outer, account, step)
                    finally:
                        self.sandbox.free_mailbox_slot(account)
                else:
                    answers[str(step["id"]).casefold()] = step_answer(step, self.sandbox.mailbox_busy())
        ordered = [answers[str(step["id"]).casefold()] for step in steps]
        # The batch's entry in the request log lists its steps' statuses.
        outer.scope["state"]["steps"] = [answer["status"] for answer in ordered]
        return ordered

    async def run_step(self, outer: Request, account: Json, step: Json) -> Json:
        method = str(step.get("method", "GET")).upper()
        url = str(step.get("url", ""))
        if not url or url.startswith(("http:", "https:")):
            return {"id": step["id"], "status": 400, "body": {"error": {
                "code": "BadRequest", "message": "The batch step url must be relative to the version root."}}}
        parts = urlsplit("/" + url.lstrip("/"))
        # Each step counts against the mailbox's requests in 10 minutes, as a request would.
        if (wait := self.sandbox.over_mailbox_quota(account)) is not None:
            return step_answer(step, graph_error(429, "ApplicationThrottled",
                                                 "Application is over its MailboxRequests limit.",
                                                 {"Retry-After": str(max(1, math.ceil(wait)))}))
        # Graph throttles the steps of a batch one by one: a status fault whose path matches a step
        # (not the batch itself) answers that step alone.
        fault = self.store.take_fault(kinds=("status",), method=method, path="/v1.0" + parts.path, account=account)
        if fault is not None:
            status = int(fault.get("status", 503))
            retry_after = fault.get("retry_after")
            return {"id": step["id"], "status": status,
                    "headers": {"Retry-After": str(retry_after)} if retry_after is not None else {},
                    "body": {"error": {"code": GRAPH_CODES.get(status, "UnknownError"),
                                       "message": fault.get("message") or "The request failed."}}}
        headers = {str(k).lower(): str(v) for k, v in (step.get("headers") or {}).items()}
        body = b""
        if "body" in step:
            headers.setdefault("content-type", "application/json")
            body = step["body"].encode() if isinstance(step["body"], str) else json.dumps(step["body"]).encode()
        headers["content-length"] = str(len(body))
        scope: dict[str, Any] = {
            "type": "http", "http_version": "1.1", "method": method, "scheme": "https",
            "path": "/v1.0" + parts.path, "raw_path": ("/v1.0" + parts.path).encode(),
            "query_string": parts.query.encode(), "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            "server": outer.scope.get("server"), "client": outer.scope.get("client"),
            # Each step runs as the batch's caller, under its own operation name.
            "state": {"account": account},
        }
        sent_body = False
        status, response_headers, chunks = 500, {}, []

        async def receive() -> Message:
            nonlocal sent_body
            if sent_body:
                return {"type": "http.disconnect"}
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.router()(scope, receive, send)
        payload = b"".join(chunks)
        result: Json = {"id": step["id"], "status": status,
                        "headers": {k: v for k, v in response_headers.items() if k.lower() != "content-length"}}
        if payload:
            if response_headers.get("content-type", "").startswith("application/json"):
                result["body"] = json.loads(payload)
            else:
                # Graph returns non-JSON step bodies (e.g. a message's MIME) base64-encoded.
                result["body"] = base64.b64encode(payload).decode("ascii")
        return result

    def router(self) -> Router:
        if self._batch_router is None:
            self._batch_router = Router(routes=[r for r in self.graph_routes()
                                                if getattr(r, "path", "") != "/v1.0/$batch"],
                                        default=self.unknown_step)
        return self._batch_router

    @staticmethod
    async def unknown_step(scope: Scope, receive: Receive, send: Send) -> None:
        await unknown_route(scope["path"], scope["method"], 404)(scope, receive, send)


def check_dependencies(steps: list[Json]) -> None:
    """``dependsOn`` must name steps of the batch, without a cycle (else the whole batch is 400)."""
    ids = {str(step["id"]).casefold() for step in steps}
    needs: dict[str, set[str]] = {}
    for step in steps:
        depends = step.get("dependsOn") or []
        if not isinstance(depends, list) or any(str(d).casefold() not in ids for d in depends):
            raise bad_request("dependsOn must list the ids of other requests in the batch.", "BadRequest")
        needs[str(step["id"]).casefold()] = {str(d).casefold() for d in depends}
    done: set[str] = set()
    while len(done) < len(needs):
        ready = {i for i, wanted in needs.items() if i not in done and wanted <= done}
        if not ready:
            raise bad_request("The dependsOn of the batch's requests form a cycle.", "BadRequest")
        done |= ready


def step_answer(step: Json, response: Response) -> Json:
    """An error answer made for a whole request, as the answer of one batch step."""
    # As Graph spells them ("Retry-After", "Content-Type"); Starlette keeps them in lower case.
    headers = {"-".join(word.capitalize() for word in name.split("-")): value
               for name, value in response.headers.items() if name != "content-length"}
    return {"id": step["id"], "status": response.status_code, "headers": headers,
            "body": json.loads(bytes(response.body))}
