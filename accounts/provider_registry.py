"""The provider adapters, one per configuration: the one place settings become adapters.

Each adapter holds a connection pool and no tokens, so one per process serves every connection.
It is looked up by kind and cached on its whole frozen configuration, so an adapter never outlives
a change of any of its settings (a test that points one at the sandbox gets a matching adapter).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from providers.base import MailProvider
from providers.google import GoogleConfig, GoogleProvider
from providers.microsoft import MicrosoftConfig, MicrosoftProvider

from . import quotas

KINDS = ("microsoft", "google")


def provider_config(kind: str) -> MicrosoftConfig | GoogleConfig:
    """The adapter's configuration for a provider kind, from the settings."""
    if kind == "microsoft":
        return MicrosoftConfig(
            client_id=settings.MICROSOFT_CLIENT_ID,
            client_secret=settings.MICROSOFT_CLIENT_SECRET,
            redirect_uri=settings.OAUTH_REDIRECT_URI,
            authority=settings.MICROSOFT_AUTHORITY,
            graph_url=settings.MICROSOFT_GRAPH_URL,
            ca_bundle=settings.PROVIDER_CA_BUNDLE,
        )
    if kind == "google":
        return GoogleConfig(
            client_id=settings.GOOGLE_CLIENT_ID,
            client_secret=settings.GOOGLE_CLIENT_SECRET,
            redirect_uri=settings.OAUTH_REDIRECT_URI,
            auth_uri=settings.GOOGLE_AUTH_URI,
            token_uri=settings.GOOGLE_TOKEN_URI,
            revoke_uri=settings.GOOGLE_REVOKE_URI,
            api_endpoint=settings.GOOGLE_API_ENDPOINT,
            ca_bundle=settings.PROVIDER_CA_BUNDLE,
        )
    raise LookupError(f"unknown provider {kind!r}")


@cache
def _adapter(config: MicrosoftConfig | GoogleConfig) -> MailProvider:
    if isinstance(config, MicrosoftConfig):
        # Graph's 4 concurrent requests per mailbox are held in Redis, for every worker.
        return MicrosoftProvider(config, concurrency=quotas.graph_slots)
    return GoogleProvider(config)


def get_provider(kind: str) -> MailProvider:
    """The adapter for a provider kind ("microsoft" or "google"); its calendar half is ``.calendar``."""
    return _adapter(provider_config(kind))
