"""Settings of the Microsoft 365 adapter.

Scopes are delegated Microsoft Graph permissions, the fewest that cover what Aspire Sync does.
msal needs them with the Graph resource prefix, and adds ``openid``, ``profile`` and
``offline_access`` itself (refusing them in this list); ``offline_access`` is what makes the
identity platform return a refresh token, so syncing continues without the user.

- ``Mail.ReadWrite``: list the Aspire folder, read a message's MIME, create the Aspire and
  Processed folders and move captured mail to Processed (``Mail.Read`` can neither create nor move).
- ``Mail.Send``: send mail written in Aspire through the user's own mailbox.
- ``Calendars.ReadWrite``: appointments both ways.
- ``User.Read``: sign in and read the profile (id, primary address, display name, proxy addresses).
- ``MailboxSettings.Read``: ``userPurpose``, which tells a user's mailbox from a shared, room or
  equipment mailbox, which Aspire refuses.

# Reference: https://learn.microsoft.com/en-us/graph/permissions-reference
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Scope identifiers name the Graph resource, whatever URL Graph is reached at (the sandbox included).
GRAPH_RESOURCE = "https://graph.microsoft.com/"

DEFAULT_SCOPES: tuple[str, ...] = tuple(
    GRAPH_RESOURCE + permission
    for permission in ("Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite", "User.Read", "MailboxSettings.Read")
)


@dataclass(frozen=True)
class MicrosoftConfig:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    # Work and school accounts only: Aspire supports Microsoft 365, not Outlook.com.
    authority: str = "https://login.microsoftonline.com/organizations"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    # A CA bundle path, or None for the system's CAs.
    ca_bundle: str | None = None
    # Seconds, for connecting and for each read; Graph and the identity platform alike.
    timeout: float = 30.0
    scopes: tuple[str, ...] = DEFAULT_SCOPES
