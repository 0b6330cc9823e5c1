"""Logging filters the settings install."""

from __future__ import annotations

import logging
import re

# A URL's query string: everything from "?" to the next space or quote.
QUERY_STRING = re.compile(r"\?[^\s\"']*")


class StripQueryStrings(logging.Filter):
    """Drop query strings from a record's arguments before it is written: the OAuth callback's
    ``code`` and ``state`` (and whatever else a URL carries) never reach an access log. Used on
    ``django.server``, runserver's request log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(QUERY_STRING.sub("", arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = QUERY_STRING.sub("", record.msg)
        return True
