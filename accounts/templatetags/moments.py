"""``{{ value|moment }}`` and ``{{ value|moment:"year" }}`` in every template (a builtin, see
settings.TEMPLATES): accounts.moments."""

from __future__ import annotations

import datetime as dt

from django import template

from accounts.moments import moment as _moment

register = template.Library()


@register.filter
def moment(value: dt.datetime | None, form: str = "") -> str:
    if form not in ("", "year"):
        raise template.TemplateSyntaxError(f'moment takes no form or "year", not {form!r}')
    return _moment(value, year=form == "year")
