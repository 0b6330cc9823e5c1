"""Which methods a page answers, said once for every app.

A page that shows something answers GET and HEAD (Django's ``require_safe``: HTTP requires HEAD
wherever GET is served); a form's own page answers those and POST (``require_safe_or_post``); an
action answers POST alone (Django's ``require_POST``). Anything else is a 405
(``tests/test_methods.py`` walks every URL)."""

from __future__ import annotations

from django.views.decorators.http import require_http_methods

# Reference: https://www.rfc-editor.org/rfc/rfc9110#section-9.1 (servers MUST support GET and HEAD)
require_safe_or_post = require_http_methods(["GET", "HEAD", "POST"])
