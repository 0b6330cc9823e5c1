"""Encryption at rest for OAuth grants, with rotatable keys (cryptography's MultiFernet)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    """The first key encrypts; every key decrypts, so old rows stay readable during a rotation."""
    return _fernet(tuple(settings.TOKEN_ENCRYPTION_KEYS))


def encrypt_json(value: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def decrypt_json(token: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(fernet().decrypt(token.encode("ascii")))
    return result


def rotate(token: str) -> str:
    """Re-encrypt under the newest key."""
    return fernet().rotate(token.encode("ascii")).decode("ascii")
