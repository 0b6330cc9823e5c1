"""Graph change notifications and the mailbox concurrency limit against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.runner import SandboxProcess

from .microsoft_client import Graph, graph_for


class Receiver:
    """A plain-HTTP webhook endpoint on loopback that answers Graph's validation handshake."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.validations: list[str] = []
        self.validation_delay = 0.0
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    time.sleep(receiver.validation_delay)
                    token = query["validationToken"][0]
                    receiver.validations.append(token)
                    self.reply(200, token.encode(), "text/plain")
                    return
                with receiver.arrived:
                    receiver.notifications.append({"path": urlsplit(self.path).path, **json.loads(body)})
                    receiver.arrived.notify_all()
                self.reply(202, b"", "text/plain")

            def reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.notifications) >= count, timeout=timeout)
        return self.notifications


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


@pytest.fixture
def graph(sandbox: SandboxProcess) -> Graph:
    return graph_for(sandbox, "ana@acme.test")


def expires_in(minutes: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def subscribe(graph: Graph, receiver: Receiver, resource: str, **extra: Any) -> Any:
    return graph.post("subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": f"{receiver.url}/notify",
        "lifecycleNotificationUrl": f"{receiver.url}/lifecycle", "resource": resource,
        "expirationDateTime": expires_in(60), "clientState": "secret-state", **extra,
    })


def test_subscription_handshake_and_a_new_message_notification(sandbox: SandboxProcess, graph: Graph,
                                                               receiver: Receiver) -> None:
    aspire = graph.ok("POST", "me/mailFolders", json={"displayName": "Aspire"})
    created = subscribe(graph, receiver, f"me/mailFolders('{aspire['id']}')/messages")
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert receiver.validations and receiver.validations[0].startswith("Validation:")

    put = sandbox.control("POST", "/accounts/microsoft/ana@acme.test/messages",
                          json={"folder": "Aspire", "raw": "From: a@example.com\r\nSubject: Hi\r\n\r\nHello\r\n"})
    sandbox.control("POST", "/accounts/microsoft/ana@acme.test/messages",
                    json={"folder": "Inbox", "raw": "From: a@example.com\r\nSubject: Elsewhere\r\n\r\nHello\r\n"})
    notification = receiver.wait_for(1)[0]
    change = notification["value"][0]
    assert notification["path"] == "/notify"
    assert change["subscriptionId"] == subscription["id"]
    assert change["clientState"] == "secret-state"
    assert change["changeType"] == "created"
    assert change["resourceData"]["id"] == put["id"]
    assert change["resourceData"]["@odata.type"] == "#Microsoft.Graph.Message"

    graph.ok("POST", f"me/messages/{put['id']}/move", json={"destinationId": "archive"})
    notifications = receiver.wait_for(2)
    assert notifications[1]["value"][0]["changeType"] == "deleted"
    assert len(notifications) == 2  # the Inbox message was not in the subscribed folder


def test_event_changes_are_notified(graph: Graph, receiver: Receiver) -> None:
    assert subscribe(graph, receiver, "me/events").status_code == 201
    graph.ok("POST", "me/events", json={"subject": "Visit",
                                        "start": {"dateTime": "2026-12-07T08:00:00", "timeZone": "UTC"},
                                        "end": {"dateTime": "2026-12-07T09:00:00", "timeZone": "UTC"}})
    change = receiver.wait_for(1)[0]["value"][0]
    assert change["changeType"] == "created"
    assert change["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"


def test_a_failed_handshake_refuses_the_subscription(graph: Graph) -> None:
    response = graph.post("subscriptions", json={
        "changeType": "created", "notificationUrl": "http://127.0.0.1:9/nowhere", "resource": "me/messages",
        "expirationDateTime": expires_in(60)})
    assert response.status_code == 400
    assert "validation request failed" in response.json()["error"]["message"]


def test_subscription_lifetime_renewal_and_deletion(sandbox: SandboxProcess, graph: Graph,
                                                    receiver: Receiver) -> None:
    too_long = subscribe(graph, receiver, "me/events", expirationDateTime=expires_in(4230 + 60))
    assert too_long.status_code == 400
    subscription = subscribe(graph, receiver, "me/events").json()
    renewed = graph.ok("PATCH", f"subscriptions/{subscription['id']}",
                       json={"expirationDateTime": expires_in(4200)})
    assert renewed["expirationDateTime"] > subscription["expirationDateTime"]

    sent = sandbox.control("POST", "/microsoft/ana@acme.test/lifecycle", json={"event": "reauthorizationRequired"})
    assert sent["sent"] == [subscription["id"]]
    lifecycle = receiver.wait_for(1)[0]
    assert lifecycle["path"] == "/lifecycle"
    assert lifecycle["value"][0]["lifecycleEvent"] == "reauthorizationRequired"

    assert graph.request("DELETE", f"subscriptions/{subscription['id']}").status_code == 204
    assert graph.get(f"subscriptions/{subscription['id']}").status_code == 404


def test_more_than_four_concurrent_requests_per_mailbox_are_throttled(sandbox: SandboxProcess, graph: Graph,
                                                                      receiver: Receiver) -> None:
    # /reset leaves the limits switch as another test set it.
    sandbox.control("POST", "/limits", json={"enabled": True})
    # A slow webhook keeps each subscription request open, so they overlap in the sandbox.
    receiver.validation_delay = 1.0
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: subscribe(graph, receiver, "me/events"), range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 4 and statuses.count(429) == 2
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"


def test_an_expired_subscription_stays_silent(sandbox: SandboxProcess, graph: Graph, receiver: Receiver) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    assert subscribe(graph, receiver, "me/mailFolders('inbox')/messages", expirationDateTime=soon).status_code == 201
    time.sleep(2.5)
    sandbox.control("POST", "/accounts/microsoft/ana@acme.test/messages",
                    json={"folder": "Inbox", "raw": "Subject: Late\r\n\r\nHello\r\n"})
    assert receiver.wait_for(1, timeout=1) == []


def test_lifecycle_notifications_only_for_subscriptions_made_with_a_lifecycle_url(
        sandbox: SandboxProcess, graph: Graph, receiver: Receiver) -> None:
    """As on Graph: a subscription made without lifecycleNotificationUrl gets no lifecycle
    notifications, and the property cannot be added by renewing it."""
    without = subscribe(graph, receiver, "me/events", lifecycleNotificationUrl=None).json()
    assert without["lifecycleNotificationUrl"] is None

    def lifecycle(**spec: Any) -> Any:
        return sandbox.session.post(f"{sandbox.base_url}/_sandbox/microsoft/ana@acme.test/lifecycle", json=spec,
                                    verify=str(sandbox.ca_path), timeout=10)

    named = lifecycle(event="subscriptionRemoved", subscription_id=without["id"])
    assert named.status_code == 400 and "without a lifecycleNotificationUrl" in named.json()["error"]
    assert lifecycle(event="missed").status_code == 400  # the mailbox has none made with it
    assert graph.get(f"subscriptions/{without['id']}").status_code == 200  # not removed either
    added = graph.request("PATCH", f"subscriptions/{without['id']}",
                          json={"lifecycleNotificationUrl": f"{receiver.url}/lifecycle"})
    assert added.status_code == 400
    assert receiver.wait_for(1, timeout=1) == []

    with_url = subscribe(graph, receiver, "me/events").json()
    assert lifecycle(event="missed").json() == {"sent": [with_url["id"]]}
    assert receiver.wait_for(1)[0]["value"][0]["lifecycleEvent"] == "missed"
