"""The provider adapters, one per configuration: the one place settings become adapters.

Each adapter holds a connection pool and no tokens, so one per process serves every connection.
It is looked up by kind and cached on its whole frozen configuration, so an adapter never outlives
a change of any of its settings (a test that points one at the sandbox gets a matching adapter).
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache

from django.conf import settings

from providers.base import MailProvider
from providers.google import GoogleConfig, GoogleProvider
from providers.microsoft import MicrosoftConfig, MicrosoftProvider

from . import quotas

CONFIGS: dict[str, type[MicrosoftConfig] | type[GoogleConfig]] = {"microsoft": MicrosoftConfig, "google": GoogleConfig}
KINDS = tuple(CONFIGS)
# A provider's settings are named after its kind and the field they fill (MICROSOFT_GRAPH_URL,
# GOOGLE_TOKEN_URI), except these, one setting for every provider.
SHARED_SETTINGS = {"redirect_uri": "OAUTH_REDIRECT_URI", "ca_bundle": "PROVIDER_CA_BUNDLE"}
# Fields no setting fills: each adapter's own defaults.
NOT_SETTINGS = frozenset({"timeout", "scopes"})


def provider_config(kind: str) -> MicrosoftConfig | GoogleConfig:
    """The adapter's configuration for a provider kind, from the settings."""
    try:
        config = CONFIGS[kind]
    except KeyError:
        raise LookupError(f"unknown provider {kind!r}") from None
    return config(**{
        item.name: getattr(settings, SHARED_SETTINGS.get(item.name, f"{kind.upper()}_{item.name.upper()}"))
        for item in fields(config) if item.name not in NOT_SETTINGS
    })


@cache
def _adapter(config: MicrosoftConfig | GoogleConfig) -> MailProvider:
    if isinstance(config, MicrosoftConfig):
        # Graph's 4 concurrent requests per mailbox are held in Redis, for every worker.
        return MicrosoftProvider(config, concurrency=quotas.graph_slots)
    return GoogleProvider(config)


def get_provider(kind: str) -> MailProvider:
    """The adapter for a provider kind ("microsoft" or "google"); its calendar half is ``.calendar``."""
    return _adapter(provider_config(kind))
