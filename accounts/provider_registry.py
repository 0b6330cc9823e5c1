"""The configured provider adapters, built once from settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from providers.base import MailProvider


@cache
def _build(kind: str, config_key: tuple[object, ...]) -> MailProvider:
    if kind == "microsoft":
        from providers.microsoft import MicrosoftConfig, MicrosoftProvider

        return MicrosoftProvider(
            MicrosoftConfig(
                client_id=settings.MICROSOFT_CLIENT_ID,
                client_secret=settings.MICROSOFT_CLIENT_SECRET,
                redirect_uri=settings.OAUTH_REDIRECT_URI,
                authority=settings.MICROSOFT_AUTHORITY,
                graph_url=settings.MICROSOFT_GRAPH_URL,
                ca_bundle=settings.PROVIDER_CA_BUNDLE,
            )
        )
    if kind == "google":
        from providers.google import GoogleConfig, GoogleProvider

        return GoogleProvider(
            GoogleConfig(
                client_id=settings.GOOGLE_CLIENT_ID,
                client_secret=settings.GOOGLE_CLIENT_SECRET,
                redirect_uri=settings.OAUTH_REDIRECT_URI,
                auth_uri=settings.GOOGLE_AUTH_URI,
                token_uri=settings.GOOGLE_TOKEN_URI,
                revoke_uri=settings.GOOGLE_REVOKE_URI,
                api_endpoint=settings.GOOGLE_API_ENDPOINT,
                ca_bundle=settings.PROVIDER_CA_BUNDLE,
            )
        )
    raise LookupError(f"unknown provider {kind!r}")


def get_provider(kind: str) -> MailProvider:
    # Settings are part of the key so tests that override them get a matching adapter.
    key = tuple(
        getattr(settings, name)
        for name in (
            "OAUTH_REDIRECT_URI", "PROVIDER_CA_BUNDLE", "MICROSOFT_CLIENT_ID", "MICROSOFT_AUTHORITY",
            "MICROSOFT_GRAPH_URL", "GOOGLE_CLIENT_ID", "GOOGLE_AUTH_URI", "GOOGLE_API_ENDPOINT",
        )
    )
    return _build(kind, key)
