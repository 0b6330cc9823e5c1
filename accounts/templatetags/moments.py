"""``{{ value|moment }}`` in every template (a builtin, see settings.TEMPLATES): accounts.moments."""

from __future__ import annotations

from django import template

from accounts.moments import moment as _moment

register = template.Library()
register.filter("moment", _moment, is_safe=False)
