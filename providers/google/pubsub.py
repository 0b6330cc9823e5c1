"""Pub/Sub push authentication: each push carries a JWT that Google signs, in its Authorization
header. google-auth checks the signature (against Google's published certificates), the expiry and
the audience; the sender is Pub/Sub acting as the push subscription's service account.

The certificates are cached per process (Google changes its keys about once a day and says how long
a copy is good for), and fetched again when a token names a key the copy lacks, at most once every
``REFETCH_AFTER`` seconds, so a flood of forged tokens costs no outgoing requests.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import requests
from google.auth import exceptions, jwt

# Reference: https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Reference: https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
CLOCK_SKEW_SECONDS = 30
DEFAULT_MAX_AGE = 3600
REFETCH_AFTER = 30

_lock = threading.Lock()
_certs: dict[str, tuple[dict[str, str], float, float]] = {}  # url -> (certs, good until, fetched at)


class PushTokenInvalid(Exception):
    """The push is not from Pub/Sub acting for our service account; ``str()`` says why."""


def verify_push_token(token: str, *, audience: str, service_account: str, certs_url: str = GOOGLE_CERTS_URL,
                      ca_bundle: str | None = None) -> dict[str, Any]:
    """The token's claims, once its signature, expiry, audience, issuer and sender are checked."""
    try:
        key_id = str(jwt.decode_header(token).get("kid", ""))
        claims: dict[str, Any] = jwt.decode(token, certs=_certificates(certs_url, key_id, ca_bundle),
                                            audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
    except (ValueError, TypeError, exceptions.GoogleAuthError) as exc:
        raise PushTokenInvalid(f"token refused: {exc.__class__.__name__}") from exc
    if claims.get("iss") not in ISSUERS:
        raise PushTokenInvalid("not issued by Google")
    if claims.get("email") != service_account or claims.get("email_verified") is not True:
        raise PushTokenInvalid("not our push service account")
    return claims


def _certificates(url: str, key_id: str, ca_bundle: str | None) -> dict[str, str]:
    now = time.monotonic()
    with _lock:
        certs, good_until, fetched_at = _certs.get(url, ({}, 0.0, -REFETCH_AFTER))
        stale = now >= good_until or key_id not in certs
        if stale and now - fetched_at >= REFETCH_AFTER:
            try:
                certs, max_age = _fetch(url, ca_bundle)
            except (requests.RequestException, ValueError) as exc:
                _certs[url] = (certs, good_until, now)
                raise PushTokenInvalid(f"certificates unavailable: {exc.__class__.__name__}") from exc
            _certs[url] = (certs, now + max_age, now)
    return certs


def _fetch(url: str, ca_bundle: str | None) -> tuple[dict[str, str], float]:
    session = requests.Session()
    session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment must not override verify
    response = session.get(url, timeout=5, verify=ca_bundle or True)
    response.raise_for_status()
    certs = response.json()
    if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
        raise ValueError("not a certificate map")
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    return certs, float(min(int(match.group(1)), DEFAULT_MAX_AGE * 24) if match else DEFAULT_MAX_AGE)
