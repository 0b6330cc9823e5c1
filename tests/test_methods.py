"""Every page answers only the methods it serves: GET for a page, POST for what a form sends (or
both, for a form's own page), and 405 for anything else, whoever asks. Walked over every URL of
the project, so a new view that forgets to say which methods it serves fails here."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import User
from tests.conftest import client_for

# Methods no page of Aspire serves (OPTIONS is left to Django's own rules; HEAD is answered wherever GET is).
UNSERVED = ("PUT", "PATCH", "DELETE")
# The Django admin is Django's own, with its own rules for what it answers.
NOT_WALKED = ("admin/",)


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(NOT_WALKED):
            continue
        if isinstance(pattern, URLResolver):
            routes.extend(_routes(pattern.url_patterns, route))
        else:
            routes.append(route)
    return routes


def _url(route: str) -> str:
    """The route with a value in each of its parameters: a fresh UUID, or a word."""
    filled = re.sub(r"<uuid:\w+>", lambda _: str(uuid.uuid4()), route)
    return "/" + re.sub(r"<(?:\w+:)?\w+>", "x", filled)


def test_every_url_is_walked() -> None:
    urls = {_url(route) for route in _routes(get_resolver().url_patterns)}
    # A few from each app, so the walk cannot quietly walk nothing.
    for expected in ("/", "/login/", "/settings/", "/contacts/", "/calendar/personal.ics", "/mail/outbox/",
                     "/activities/search/", "/hooks/google/pubsub/", "/healthz"):
        assert expected in urls
    assert not any(url.startswith("/admin/") for url in urls)


@pytest.mark.parametrize("method", UNSERVED)
def test_a_method_a_page_does_not_serve_is_refused_with_405(method: str, bob: User) -> None:
    client = client_for(bob)
    answered = {}
    for route in _routes(get_resolver().url_patterns):
        url = _url(route)
        answered[url] = client.generic(method, url).status_code
    assert {url: status for url, status in answered.items() if status != 405} == {}


def test_head_is_answered_wherever_get_is(bob: User) -> None:
    """HTTP requires HEAD wherever GET is served (RFC 9110, 9.1): uptime monitors, link checkers
    and calendar apps ask with it. A page that refuses GET (an action) refuses HEAD too."""
    client = client_for(bob)
    refused = {}
    for route in _routes(get_resolver().url_patterns):
        url = _url(route)
        get, head = client.get(url).status_code, client.head(url).status_code
        if (get == 405) != (head == 405):
            refused[url] = (get, head)
    assert refused == {}
    assert client.head("/").status_code == 302
    assert client.head("/healthz").status_code in (200, 503)
    # No key: the feed's own answer (404), not a refused method.
    assert client.head("/calendar/personal.ics").status_code == 404
