"""Graph change notifications: subscriptions with the validation handshake, change and lifecycle notifications.

State per account: ``subscriptions``: subscription id -> {id, resource, changeType, notificationUrl,
lifecycleNotificationUrl, clientState, expirationDateTime, target} where target is
{"kind": "messages", "folder": id or None for every folder} or {"kind": "events"}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .common import (
    GraphError,
    Json,
    bad_request,
    context,
    data_of,
    etag,
    graph,
    graph_json,
    json_body,
    parse_iso,
    utc_now,
)

if TYPE_CHECKING:
    from ..app import Sandbox
    from .mail import Mail

# Reference: https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime
MAX_LIFETIME = dt.timedelta(minutes=4230)
VALIDATION_TIMEOUT = 10
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
NOT_EMULATED_SUBSCRIPTION_FIELDS: Json = {
    "includeResourceData": False, "encryptionCertificate": None, "encryptionCertificateId": None,
    "notificationQueryOptions": None, "notificationUrlAppId": None, "lifecycleNotificationUrl": None,
}

_FOLDER_MESSAGES = re.compile(r"^/?(?:me|users/[^/]+)/mailFolders(?:\('([^']+)'\)|/([^/]+))/messages$", re.I)
_ALL_MESSAGES = re.compile(r"^/?(?:me|users/[^/]+)/messages$", re.I)
_EVENTS = re.compile(r"^/?(?:me|users/[^/]+)/(?:calendar/)?events$", re.I)


class Subscriptions:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.mail: Mail | None = None  # set by the emulator once both exist: mail resolves folder names

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1.0/subscriptions", self.subscriptions, methods=["GET", "POST"]),
            Route("/v1.0/subscriptions/{subscription_id}", self.subscription, methods=["GET", "PATCH", "DELETE"]),
            Route("/_sandbox/microsoft/{email}/subscriptions", self.control_list, methods=["GET"]),
            Route("/_sandbox/microsoft/{email}/lifecycle", self.control_lifecycle, methods=["POST"]),
        ]

    def setup(self, data: Json) -> None:
        data["subscriptions"] = {}

    # -- Graph API -----------------------------------------------------------------------
    @graph("subscriptions.list")
    async def subscriptions(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-list
        subscriptions = data_of(account)["subscriptions"]
        if request.method == "GET":
            return graph_json({"@odata.context": context(self.sandbox, "subscriptions"),
                               "value": [self.subscription_json(s) for s in subscriptions.values()]})
        # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
        request.scope["state"]["operation"] = "subscriptions.create"
        spec = await json_body(request)
        for field in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not spec.get(field):
                raise bad_request(f"The '{field}' property is required.", "InvalidRequest")
        if spec.get("includeResourceData"):
            # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data
            raise bad_request("Change notifications with resource data are not emulated by the sandbox.",
                              "InvalidRequest")
        change_types = [c.strip() for c in str(spec["changeType"]).split(",")]
        if any(c not in CHANGE_TYPES for c in change_types):
            raise bad_request(f"Invalid changeType '{spec['changeType']}'.", "InvalidRequest")
        target = self.target_of(account, str(spec["resource"]))
        expiration = self.checked_expiration(str(spec["expirationDateTime"]))
        for url in (spec["notificationUrl"], spec.get("lifecycleNotificationUrl")):
            if url and not await self.validate_endpoint(str(url)):
                raise bad_request(
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
                    "to validation request.", "ValidationError")
        subscription = {
            "id": str(uuid.uuid4()), "resource": spec["resource"], "changeType": ",".join(change_types),
            "notificationUrl": spec["notificationUrl"],
            "lifecycleNotificationUrl": spec.get("lifecycleNotificationUrl"),
            "clientState": spec.get("clientState"), "expirationDateTime": expiration, "target": target,
            # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions (response)
            "applicationId": self.client_id_of(request), "creatorId": account["id"],
            "latestSupportedTlsVersion": spec.get("latestSupportedTlsVersion") or "v1_2",
            "notificationContentType": "application/json",
        }
        subscriptions[subscription["id"]] = subscription
        return graph_json({"@odata.context": context(self.sandbox, "subscriptions/$entity"),
                           **self.subscription_json(subscription)}, status=201)

    @graph("subscriptions.get")
    async def subscription(self, request: Request, account: Json) -> Response:
        # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-get
        subscriptions = data_of(account)["subscriptions"]
        subscription = subscriptions.get(request.path_params["subscription_id"])
        if subscription is None:
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        if request.method == "DELETE":
            # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-delete
            del subscriptions[subscription["id"]]
            return Response(status_code=204)
        if request.method == "PATCH":
            # Reference: https://learn.microsoft.com/en-us/graph/api/subscription-update
            spec = await json_body(request)
            if "lifecycleNotificationUrl" in spec:
                # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events#configure-your-subscription-to-receive-lifecycle-notifications
                raise bad_request("lifecycleNotificationUrl can only be set when a subscription is created.",
                                  "InvalidRequest")
            if spec.get("expirationDateTime"):
                subscription["expirationDateTime"] = self.checked_expiration(str(spec["expirationDateTime"]))
        return graph_json({"@odata.context": context(self.sandbox, "subscriptions/$entity"),
                           **self.subscription_json(subscription)})

    def client_id_of(self, request: Request) -> str:
        """The application the caller's access token was issued to."""
        authorization = request.headers.get("authorization", "")
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        return str(self.store.access_tokens.get(token, {}).get("client_id", ""))

    def subscription_json(self, subscription: Json) -> Json:
        # Reference: https://learn.microsoft.com/en-us/graph/api/resources/subscription (properties)
        # Rich notifications (resource data, encryption) are not emulated: served as not asked for.
        return {**NOT_EMULATED_SUBSCRIPTION_FIELDS,
                **{k: v for k, v in subscription.items() if k != "target"}}

    def target_of(self, account: Json, resource: str) -> Json:
        folder_match = _FOLDER_MESSAGES.match(resource)
        if folder_match:
            assert self.mail is not None
            folder = self.mail.folder_by_id(data_of(account), folder_match.group(1) or folder_match.group(2))
            return {"kind": "messages", "folder": folder["id"]}
        if _ALL_MESSAGES.match(resource):
            return {"kind": "messages", "folder": None}
        if _EVENTS.match(resource):
            return {"kind": "events"}
        raise bad_request(f"Resource '{resource}' is not supported for subscriptions.", "InvalidRequest")

    def checked_expiration(self, text: str) -> str:
        expiration = parse_iso(text)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=dt.UTC)
        current = utc_now()
        if expiration <= current:
            raise bad_request("Subscription expiration must be in the future.", "InvalidRequest")
        if expiration > current + MAX_LIFETIME + dt.timedelta(minutes=1):
            raise bad_request(
                f"Subscription expiration can only be {int(MAX_LIFETIME.total_seconds() // 60)} minutes in the "
                "future.", "InvalidRequest")
        return expiration.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")

    async def validate_endpoint(self, url: str) -> bool:
        # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notificationurl-validation
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"

        def call() -> bool:
            try:
                response = requests.post(
                    url, params={"validationToken": token}, headers={"Content-Type": "text/plain; charset=utf-8"},
                    timeout=VALIDATION_TIMEOUT,
                    verify=str(self.sandbox.ca_path) if self.sandbox.ca_path else True,
                )
            except requests.RequestException:
                return False
            return response.status_code == 200 and response.text == token

        return await asyncio.to_thread(call)

    # -- delivering notifications ----------------------------------------------------------
    def live(self, account: Json) -> list[Json]:
        current = utc_now()
        return [s for s in data_of(account)["subscriptions"].values()
                if parse_iso(s["expirationDateTime"]) > current]

    def message_changed(self, account: Json, folder_id: str, record: Json, change_type: str) -> None:
        for subscription in self.live(account):
            target = subscription["target"]
            if target["kind"] == "messages" and target["folder"] in (None, folder_id):
                self.notify(account, subscription, change_type, "Messages", "#Microsoft.Graph.Message",
                            record["id"], record["changeKey"])

    def event_changed(self, account: Json, event_id: str, change_key: str, change_type: str) -> None:
        for subscription in self.live(account):
            if subscription["target"]["kind"] == "events":
                self.notify(account, subscription, change_type, "Events", "#Microsoft.Graph.Event",
                            event_id, change_key)

    def notify(self, account: Json, subscription: Json, change_type: str, collection: str, odata_type: str,
               item_id: str, change_key: str) -> None:
        # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#change-notification-example
        if change_type not in subscription["changeType"].split(","):
            return
        resource = f"Users/{account['id']}/{collection}/{item_id}"
        self.sandbox.push(subscription["notificationUrl"], json_body={"value": [{
            "subscriptionId": subscription["id"],
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "changeType": change_type,
            "resource": resource,
            "resourceData": {"@odata.type": odata_type, "@odata.id": resource,
                             "@odata.etag": etag(change_key), "id": item_id},
            "clientState": subscription["clientState"],
            "tenantId": account["tenant_id"],
        }]}, account=account["email"], kind="graph.notification")

    # -- control API -----------------------------------------------------------------------
    def account_or_404(self, request: Request) -> Json:
        account = self.store.find_account("microsoft", request.path_params["email"])
        if account is None:
            raise LookupError(f"no microsoft account {request.path_params['email']}")
        return account

    async def control_list(self, request: Request) -> Response:
        account = self.account_or_404(request)
        return JSONResponse({"subscriptions": list(data_of(account)["subscriptions"].values())})

    async def control_lifecycle(self, request: Request) -> Response:
        """Send a lifecycle notification, as Graph does before it drops or needs to reauthorize a subscription.

        Body: {"event": "reauthorizationRequired" | "subscriptionRemoved" | "missed", "subscription_id": optional}.
        As on Graph, only subscriptions created with a lifecycleNotificationUrl get them: naming one
        made without is refused (400), and so is a mailbox that has none.
        """
        # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
        account = self.account_or_404(request)
        spec = await request.json()
        event = spec.get("event") if isinstance(spec, dict) else None
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"event must be one of {LIFECYCLE_EVENTS}")
        subscriptions = data_of(account)["subscriptions"]
        if spec.get("subscription_id"):
            chosen = subscriptions.get(spec["subscription_id"])
            if chosen is None:
                raise LookupError(f"no subscription {spec['subscription_id']}")
            if not chosen["lifecycleNotificationUrl"]:
                # Reference: https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events#configure-your-subscription-to-receive-lifecycle-notifications
                raise ValueError(f"subscription {chosen['id']} was created without a lifecycleNotificationUrl: "
                                 "Graph sends it no lifecycle notifications")
            targets = [chosen]
        else:
            targets = [s for s in subscriptions.values() if s["lifecycleNotificationUrl"]]
            if not targets:
                raise ValueError("no subscription of this mailbox was created with a lifecycleNotificationUrl")
        for subscription in targets:
            self.sandbox.push(subscription["lifecycleNotificationUrl"], json_body={"value": [{
                "subscriptionId": subscription["id"],
                "subscriptionExpirationDateTime": subscription["expirationDateTime"],
                "tenantId": account["tenant_id"], "clientState": subscription["clientState"],
                "lifecycleEvent": event,
            }]}, account=account["email"], kind="graph.lifecycle")
            if event == "subscriptionRemoved":
                del subscriptions[subscription["id"]]
        return JSONResponse({"sent": [subscription["id"] for subscription in targets]})
