"""Logging filters the settings install on every handler: the work's ids in, secrets out."""

from __future__ import annotations

import logging
import re

from accounts.log_context import current_log_ids

# A URL's query string: everything from "?" to the next space or quote.
QUERY_STRING = re.compile(r"\?[^\s\"']*")
# Credentials as they appear in HTTP headers, token answers and form bodies.
SECRETS = re.compile(
    r"(?i)(?P<name>bearer\s+|basic\s+|[\"']?(?:access_token|refresh_token|id_token|client_secret|code|password|"
    r"client_assertion)[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"'&,;}]+)"
)


def _each_text(record: logging.LogRecord, change: re.Pattern[str], replacement: str) -> None:
    if isinstance(record.args, tuple):
        record.args = tuple(change.sub(replacement, arg) if isinstance(arg, str) else arg for arg in record.args)
    if isinstance(record.msg, str):
        record.msg = change.sub(replacement, record.msg)


class StripQueryStrings(logging.Filter):
    """Drop query strings from a record's arguments before it is written: the OAuth callback's
    ``code`` and ``state`` (and whatever else a URL carries) never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        _each_text(record, QUERY_STRING, "")
        return True


class RedactSecrets(logging.Filter):
    """Whatever looks like a credential (a bearer token, a token answer's fields, a password in a
    form body) is replaced by [redacted] before the record is written. A second line of defence:
    the libraries that log whole token requests are kept at WARNING (settings.LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _each_text(record, SECRETS, r"\g<name>[redacted]")
        return True


class WorkContext(logging.Filter):
    """The company, connection and run ids of the work in progress (``accounts.log_context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_log_ids().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
