"""Checking the sandbox's answers against the providers' documentation: a small language for the
shape of a documented response (field names, JSON types, and the values the documentation allows),
written by hand from each documented example. Fields the sandbox returns beyond the documented
ones are allowed, as the services return more than their examples show; they are listed in the
failure message when a check fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class OneOf:
    """A string whose value the documentation restricts to these."""

    def __init__(self, *values: str) -> None:
        self.values = values


# A shape is a JSON type name ("string", "number", "bool", "object", "array", "null"), a tuple of
# type names (any of them), OneOf(values), a dict (an object with these fields) or a one-item list
# (an array whose items all have that shape; [] when the docs show an empty array).
Shape = str | tuple[str, ...] | OneOf | dict[str, "Shape"] | list["Shape"]

STRING, NUMBER, BOOL, OBJECT, ARRAY, NULL = "string", "number", "bool", "object", "array", "null"


def json_type(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return ARRAY
    return OBJECT


def problems(shape: Shape, value: Any, path: str = "$") -> tuple[list[str], list[str]]:
    """What in ``value`` contradicts ``shape`` (missing fields, wrong types, values the docs rule
    out), and the fields ``value`` has beyond it."""
    found: list[str] = []
    extra: list[str] = []
    if isinstance(shape, OneOf):
        if value not in shape.values:
            found.append(f"{path}: {value!r} is not one of {list(shape.values)}")
    elif isinstance(shape, str | tuple):
        allowed = (shape,) if isinstance(shape, str) else shape
        if json_type(value) not in allowed:
            found.append(f"{path}: {json_type(value)} ({value!r:.60}) where the docs have {' or '.join(allowed)}")
    elif isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path}: {json_type(value)} where the docs have an object"], extra
        for name, field_shape in shape.items():
            if name not in value:
                found.append(f"{path}.{name}: missing")
                continue
            more, more_extra = problems(field_shape, value[name], f"{path}.{name}")
            found += more
            extra += more_extra
        extra += [f"{path}.{name}" for name in value if name not in shape]
    elif isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{path}: {json_type(value)} where the docs have an array"], extra
        for index, item in enumerate(value):
            if shape:
                more, more_extra = problems(shape[0], item, f"{path}[{index}]")
                found += more
                extra += more_extra
    return found, extra


@dataclass(frozen=True)
class Documented:
    """A documented response: its status code and its body's shape (None: no body)."""

    status: int
    body: Shape | None


def report(what: str, found: list[str], extra: list[str]) -> str:
    return (f"{what} differs from the docs:\n  " + "\n  ".join(found)
            + "\nextra fields (allowed): " + ", ".join(extra or ["none"]))


def assert_shape(what: str, shape: Shape, value: Any) -> None:
    found, extra = problems(shape, value)
    assert not found, report(what, found, extra)


def check(documented: Documented, response: requests.Response) -> Any:
    """Assert the response is what the documentation describes; return its JSON body."""
    found: list[str] = []
    extra: list[str] = []
    if response.status_code != documented.status:
        found.append(f"status {response.status_code}, documented {documented.status}")
    body = response.json() if response.content else None
    if documented.body is None:
        if response.content:
            found.append(f"a body where the docs have none: {response.text[:200]!r}")
    else:
        mismatches, extra = problems(documented.body, body)
        found += mismatches
    assert not found, report(f"{response.request.method} {response.request.url}", found, extra)
    return body


def page_links(page: dict[str, Any]) -> set[str]:
    return {name for name in ("@odata.nextLink", "@odata.deltaLink") if name in page}
