"""Google's batch endpoint: a multipart/mixed request of application/http parts, each answered
as if it had been sent on its own (own auth, quota, counters), in one multipart/mixed response."""

from __future__ import annotations

import http
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Receive, Scope, Send

from ..errors import google_error, unknown_route
from .mime import split_head, split_multipart

if TYPE_CHECKING:
    from . import GoogleEmulator

MAX_CALLS = 100


class Batch:
    def __init__(self, emulator: GoogleEmulator, api_routes: list[BaseRoute]) -> None:
        self.emulator = emulator
        self.store = emulator.store
        self.router = Router(routes=api_routes, default=self.unknown_call)

    @staticmethod
    async def unknown_call(scope: Scope, receive: Receive, send: Send) -> None:
        await unknown_route(scope["path"], scope["method"], 404)(scope, receive, send)

    def routes(self) -> list[BaseRoute]:
        # The client library posts to the discovery document's batchPath ("batch" for Gmail,
        # "batch/calendar/v3" for Calendar); Google also serves the per-API "batch/gmail/v1".
        return [Route(path, self.batch, methods=["POST"])
                for path in ("/batch", "/batch/gmail/v1", "/batch/calendar/v3")]

    async def batch(self, request: Request) -> Response:
        # Reference: https://developers.google.com/workspace/gmail/api/guides/batch
        request.scope["state"]["operation"] = "batch"
        outer_authorization = request.headers.get("authorization", "")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/mixed"):
            return google_error(400, "badRequest", "Batch requests must be multipart/mixed.")
        parts = split_multipart(content_type, await request.body())
        if not parts:
            return google_error(400, "badRequest", "Batch request has no parts.")
        if len(parts) > MAX_CALLS:
            return google_error(400, "badRequest",
                                f"Exceeded the maximum calls({MAX_CALLS}) in a single batch request.")
        boundary = "batch_" + secrets.token_hex(12)
        chunks: list[bytes] = []
        for part_headers, part_body in parts:
            status, headers, body = await self._dispatch(part_body, outer_authorization)
            content_id = part_headers.get("content-id", "")
            if content_id.startswith("<"):
                content_id = "<response-" + content_id[1:]
            reason = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
            head = [f"--{boundary}", "Content-Type: application/http"]
            if content_id:
                head.append(f"Content-ID: {content_id}")
            head += ["", f"HTTP/1.1 {status} {reason}"]
            head += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length"]
            head += [f"Content-Length: {len(body)}", "", ""]
            chunks.append("\r\n".join(head).encode() + body + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return Response(b"".join(chunks), media_type=f"multipart/mixed; boundary={boundary}")

    async def _dispatch(self, text: bytes, outer_authorization: str) -> tuple[int, list[tuple[str, str]], bytes]:
        head, body = split_head(text)
        lines = head.decode("utf-8").splitlines()
        if not lines or len(lines[0].split()) < 2:
            error = google_error(400, "badRequest", "Malformed call")
            return 400, [("Content-Type", "application/json")], bytes(error.body)
        method, target = lines[0].split()[:2]
        path, _, query = target.partition("?")
        headers = [(name.strip().lower(), value.strip()) for name, _, value in
                   (line.partition(":") for line in lines[1:] if ":" in line)]
        # A call without its own credentials uses the batch request's.
        authorization = dict(headers).get("authorization")
        if authorization is None and outer_authorization:
            authorization = outer_authorization
            headers.append(("authorization", authorization))
        account = None
        if authorization and authorization[:7].lower() == "bearer ":
            account = self.store.account_for_access_token(authorization[7:].strip(), "google")
        scope = {
            "type": "http", "http_version": "1.1", "method": method.upper(), "scheme": "https",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            "server": ("localhost", 443), "client": ("127.0.0.1", 0), "state": {"account": account},
        }
        received = False

        async def receive() -> Message:
            nonlocal received
            if received:
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        result: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                result["status"] = message["status"]
                result["headers"] = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message["headers"]]
            elif message["type"] == "http.response.body":
                result["body"] += message.get("body", b"")

        state: dict[str, Any] = {"account": account}
        scope["state"] = state
        await self.router(scope, receive, send)
        self.store.log_request({
            "ts": time.time(), "provider": "google", "method": scope["method"], "path": path, "query": query,
            "status": result["status"], "account": account["email"] if account else None,
            "operation": state.get("operation"), "batch": True,
        })
        return result["status"], result["headers"], result["body"]
