"""The sandbox's state: accounts, grants, faults, the request log and counters.

Everything runs on one asyncio event loop, so a handler that does not ``await`` while it
changes state needs no lock. State is plain JSON-able data (dicts, lists, str, int, float,
bool, None, and bytes, which the state file stores as base64) so ``--state FILE`` can keep it.
Provider emulators keep their own per-account data in ``account["data"][provider_name]``.
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

ACCOUNT_KINDS = ("user", "shared", "room", "distribution_list", "alias")
PROVIDERS = ("microsoft", "google")
REQUEST_LOG_LIMIT = 5000

Json = dict[str, Any]


def _encode(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"__bytes__": base64.b64encode(obj).decode("ascii")}
    raise TypeError(f"not serialisable: {type(obj).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__bytes__"}:
        return base64.b64decode(obj["__bytes__"])
    return obj


def now() -> float:
    return time.time()


def new_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


class Store:
    def __init__(self) -> None:
        self.reset()

    # -- lifecycle -------------------------------------------------------------------
    def reset(self) -> None:
        # Each reset starts a new generation: a request that began before it is not logged after.
        self.generation: int = getattr(self, "generation", 0) + 1
        self.accounts: dict[str, Json] = {}  # account id -> account
        self.by_address: dict[tuple[str, str], str] = {}  # (provider, email) -> account id
        # access token -> {"account": id, "provider", "client_id", "scopes", "expires_at"}
        self.access_tokens: dict[str, Json] = {}
        # refresh token -> {"account", "provider", "client_id", "scopes"}
        self.refresh_tokens: dict[str, Json] = {}
        # one-time authorization codes -> grant details (PKCE challenge, redirect URI, ...)
        self.auth_codes: dict[str, Json] = {}
        # pending interactive sign-ins (login / MFA pages) -> the authorize request
        self.pending_logins: dict[str, Json] = {}
        self.faults: list[Json] = []
        self.settings: Json = {"push_endpoints": {}}  # e.g. Pub/Sub topic -> push URL
        self.request_log: collections.deque[Json] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self.counters: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.sequence = 0

    def next_sequence(self) -> int:
        """A store-wide increasing number (history ids, change keys, delta cursors)."""
        self.sequence += 1
        return self.sequence

    def dump(self) -> str:
        return json.dumps(
            {
                "accounts": self.accounts,
                "access_tokens": self.access_tokens,
                "refresh_tokens": self.refresh_tokens,
                "settings": self.settings,
                "sequence": self.sequence,
            },
            default=_encode,
        )

    def load(self, text: str) -> None:
        self.reset()
        data = json.loads(text, object_hook=_decode)
        self.accounts = data["accounts"]
        self.by_address = {(a["provider"], a["email"]): a["id"] for a in self.accounts.values()}
        self.access_tokens = data["access_tokens"]
        self.refresh_tokens = data["refresh_tokens"]
        self.settings = data["settings"]
        self.sequence = data["sequence"]

    def save_to(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.dump())
        tmp.replace(path)

    # -- accounts --------------------------------------------------------------------
    def create_account(
        self,
        *,
        provider: str,
        email: str,
        display_name: str = "",
        kind: str = "user",
        password: str = "password",
        mfa: bool = False,
        mfa_code: str = "123456",
        alias_of: str | None = None,
    ) -> Json:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}")
        if kind not in ACCOUNT_KINDS:
            raise ValueError(f"kind must be one of {ACCOUNT_KINDS}")
        email = email.strip().lower()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise ValueError("email is not a valid address")
        if self.find_account(provider, email) is not None:
            raise ValueError(f"{provider} account {email} already exists")
        account: Json = {
            "id": str(uuid.uuid4()),
            "provider": provider,
            "email": email,
            "display_name": display_name or email.split("@")[0].replace(".", " ").title(),
            "kind": kind,
            "password": password,
            "mfa": mfa,
            "mfa_code": mfa_code,
            "alias_of": alias_of,
            "tenant_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, email.split("@")[1])),
            "created": now(),
            "data": {},
        }
        self.accounts[account["id"]] = account
        self.by_address[(provider, email)] = account["id"]
        return account

    def clone_accounts(self, template: Json, emails: list[str]) -> list[Json]:
        """New accounts holding a copy of ``template``'s mailbox and calendar, and for each of the
        template's tokens one of their own with the same client and scopes: ``{"id", "email",
        "tokens": {template's token: the clone's}}`` each."""
        held = [(table, token, grant) for table in (self.access_tokens, self.refresh_tokens)
                for token, grant in table.items() if grant["account"] == template["id"]]
        clones = []
        for email in emails:
            clone = self.create_account(provider=template["provider"], email=email, kind=template["kind"],
                                        password=template["password"])
            clone["data"] = copy.deepcopy(template["data"])
            tokens: dict[str, str] = {}
            for table, token, grant in held:
                tokens[token] = secrets.token_urlsafe(32 if table is self.access_tokens else 48)
                table[tokens[token]] = {**copy.deepcopy(grant), "account": clone["id"]}
            clones.append({"id": clone["id"], "email": clone["email"], "tokens": tokens})
        return clones

    def find_account(self, provider: str, email: str) -> Json | None:
        account_id = self.by_address.get((provider, email.strip().lower()))
        return None if account_id is None else self.accounts.get(account_id)

    def delete_account(self, account: Json) -> None:
        self.accounts.pop(account["id"], None)
        self.by_address.pop((account["provider"], account["email"]), None)
        for table in (self.access_tokens, self.refresh_tokens):
            for token in [t for t, grant in table.items() if grant["account"] == account["id"]]:
                del table[token]

    # -- grants ----------------------------------------------------------------------
    def issue_tokens(
        self,
        *,
        account: Json,
        provider: str,
        client_id: str,
        scopes: list[str],
        with_refresh: bool = True,
        lifetime: int = 3600,
    ) -> tuple[str, str | None]:
        access = secrets.token_urlsafe(32)
        self.access_tokens[access] = {
            "account": account["id"],
            "provider": provider,
            "client_id": client_id,
            "scopes": scopes,
            "expires_at": now() + lifetime,
        }
        refresh = None
        if with_refresh:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = {
                "account": account["id"],
                "provider": provider,
                "client_id": client_id,
                "scopes": scopes,
            }
        return access, refresh

    def account_for_access_token(self, token: str, provider: str) -> Json | None:
        grant = self.access_tokens.get(token)
        if grant is None or grant["provider"] != provider or grant["expires_at"] < now():
            return None
        return self.accounts.get(grant["account"])

    def revoke(self, token: str) -> bool:
        """Revoke a token and, as the providers do, the whole grant it belongs to."""
        grant = self.access_tokens.get(token) or self.refresh_tokens.get(token)
        if grant is None:
            return False
        for table in (self.access_tokens, self.refresh_tokens):
            for other in [
                t for t, g in table.items() if g["account"] == grant["account"] and g["client_id"] == grant["client_id"]
            ]:
                del table[other]
        return True

    # -- faults ----------------------------------------------------------------------
    def add_fault(self, fault: Json) -> Json:
        """Register a fault. Keys: ``kind`` (``status``, ``delay``, ``drop``, ``invalid_grant``),
        ``path`` (regex matched against the request path), ``method``, ``account`` (email),
        ``count`` (how many matching calls it hits), and kind-specific ``status``,
        ``retry_after``, ``seconds``."""
        fault = {"id": new_id("fault-"), "count": 1, "method": None, "path": ".*", "account": None, **fault}
        re.compile(fault["path"])
        self.faults.append(fault)
        return fault

    def take_fault(self, *, kinds: tuple[str, ...], method: str, path: str, account: Json | None) -> Json | None:
        """The first live fault matching this call, with its count decremented."""
        for fault in self.faults:
            if fault["kind"] not in kinds or fault["count"] <= 0:
                continue
            if fault["method"] and fault["method"].upper() != method.upper():
                continue
            if fault["account"] and (account is None or account["email"] != fault["account"].lower()):
                continue
            if not re.search(fault["path"], path):
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                self.faults.remove(fault)
            return fault
        return None

    # -- observation -----------------------------------------------------------------
    def count_meeting_mail(self, account: Json, kind: str, recipients: int) -> None:
        """Mail the provider would send attendees because of an API call: ``kind`` is "invitation",
        "update" or "cancellation". Counted per organiser as ``invitations`` (all of them) and
        ``invitations.<kind>``, in ``GET /_sandbox/counters``."""
        if recipients > 0:
            counter = self.counters[account["email"]]
            counter["invitations"] += recipients
            counter[f"invitations.{kind}"] += recipients

    def log_request(self, entry: Json, *, generation: int | None = None) -> None:
        """Log a finished request; one that began before the last reset (``generation`` older
        than the store's) belongs to a log that is gone, and is dropped."""
        if generation is not None and generation != self.generation:
            return
        self.request_log.append(entry)
        if entry.get("account"):
            counter = self.counters[entry["account"]]
            counter["requests"] += 1
            counter[f"status_{entry['status']}"] += 1
            if entry.get("operation"):
                counter[entry["operation"]] += 1
