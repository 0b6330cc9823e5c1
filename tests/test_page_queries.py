"""A page's query count does not grow with the company: every page the page benchmark measures,
opened for two companies made by its generator, one three times the size of the other."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from bench.company_data import CompanyGenerator, Picks, Size
from bench.management.commands.bench_pages import Page, deep_pages, pages_for

# Enough rows that every long list has several pages, at both sizes.
SMALL = Size(users=6, contacts=40, properties=10, opportunities=10, work_tickets=10, activities=400,
             heavy_contacts=2, heavy_activities=60, unmatched=30, outbound=60, appointments=300, sync_runs=250)
LARGE = Size(**{name: value * 3 for name, value in SMALL.as_dict().items()})


def _queries(clients: dict[str, Client], page: Page, picks: Picks) -> tuple[int, int]:
    user_id = getattr(picks, page.who)
    if user_id not in clients:
        clients[user_id] = Client()
        clients[user_id].force_login(User.objects.get(pk=user_id))
    client = clients[user_id]
    client.get(page.path)  # the session's first request writes it; count a later one
    with CaptureQueriesContext(connection) as captured:
        response = client.get(page.path)
    return response.status_code, len(captured)


@pytest.mark.django_db
def test_no_page_makes_more_queries_for_a_company_three_times_the_size() -> None:
    measured: dict[str, dict[str, tuple[int, int]]] = {}
    for n, (label, size) in enumerate((("small", SMALL), ("large", LARGE))):
        picks = CompanyGenerator(name=f"Queries {label}", size=size, seed=n, log=lambda _: None).generate()
        clients: dict[str, Client] = {}
        measured[label] = {page.name: _queries(clients, page, picks) for page in pages_for(picks, deep_pages(picks))}
    failed: list[Any] = [(name, status) for name, (status, _) in measured["large"].items() if status != 200]
    failed += [(name, status) for name, (status, _) in measured["small"].items() if status != 200]
    assert not failed, failed
    grown = {name: (measured["small"][name][1], queries) for name, (_, queries) in measured["large"].items()
             if queries != measured["small"][name][1]}
    assert not grown, f"queries (small, large) of pages whose count grows with the company: {grown}"
    assert len(measured["large"]) >= 60
