"""The load run of ``bench_pages``: people opening a weighted mix of pages, each every 1 to 3 seconds.

Locust runs this file in a process of its own (``locust -f bench/locustfile.py``); it imports
nothing of the project. ``BENCH_PAGES_PLAN`` names a JSON file the benchmark writes: the session
cookie's name and, per page, its path, weight and the session of the person who opens it.
"""

from __future__ import annotations

import json
import os
import random

from locust import FastHttpUser, between, task

with open(os.environ["BENCH_PAGES_PLAN"]) as plan_file:
    PLAN = json.load(plan_file)
PAGES = PLAN["pages"]
WEIGHTS = [page["weight"] for page in PAGES]


class OfficePerson(FastHttpUser):
    wait_time = between(1, 3)

    @task
    def open_a_page(self) -> None:
        page = random.choices(PAGES, weights=WEIGHTS)[0]  # noqa: S311 - a page mix, not a secret
        cookie = f"{PLAN['cookie']}={page['session']}"
        with self.client.get(page["path"], name=page["name"], headers={"Cookie": cookie},
                             allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
