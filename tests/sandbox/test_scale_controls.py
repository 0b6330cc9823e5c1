"""The sandbox's settings for benchmarks at scale: a latency added to every provider call, and
accounts cloned from one signed-in account, each answering with its own mailbox."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sandbox.runner import SandboxProcess

from .microsoft_client import Graph, graph_for
from .test_microsoft_mail import put


@pytest.fixture
def latency(sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    yield sandbox
    sandbox.control("POST", "/latency", json={"latency_ms": 0})


def test_every_provider_call_waits_for_the_latency_set(latency: SandboxProcess) -> None:
    graph = graph_for(latency, "ana@acme.test")
    assert latency.control("GET", "/latency") == {"latency_ms": 0.0}
    assert latency.control("POST", "/latency", json={"latency_ms": 300}) == {"latency_ms": 300.0}
    started = time.monotonic()
    graph.ok("GET", "/me/mailFolders")
    assert time.monotonic() - started >= 0.3
    # A reset empties the sandbox but keeps the network it runs behind.
    latency.control("POST", "/reset")
    assert latency.control("GET", "/latency") == {"latency_ms": 300.0}


@pytest.mark.parametrize("spec", [{}, {"latency_ms": -1}, {"latency_ms": 61_000}, {"latency_ms": "fast"}])
def test_a_bad_latency_is_refused(latency: SandboxProcess, spec: dict[str, object]) -> None:
    response = latency.control_response("POST", "/latency", json=spec)
    assert response.status_code == 400
    assert "latency_ms" in response.json()["error"]
    assert latency.control("GET", "/latency") == {"latency_ms": 0.0}


def test_a_clone_has_its_own_copy_of_the_mailbox_and_its_own_tokens(sandbox: SandboxProcess) -> None:
    graph_for(sandbox, "ana@acme.test")
    put(sandbox, "Inbox", "Before the clone")
    template_token = next(iter(sandbox.control("POST", "/accounts/microsoft/ana@acme.test/clones",
                                               json={"emails": ["probe@acme.test"]})["clones"][0]["tokens"]))
    answer = sandbox.control("POST", "/accounts/microsoft/ana@acme.test/clones",
                             json={"emails": ["ben@acme.test", "cy@acme.test"]})
    ben, cy = answer["clones"]
    assert ben["email"] == "ben@acme.test" and template_token in ben["tokens"]
    assert ben["tokens"][template_token] != cy["tokens"][template_token] != template_token

    ben_graph = Graph(sandbox, ben["tokens"][template_token])
    assert ben_graph.ok("GET", "/me")["mail"] == "ben@acme.test"
    inbox = ben_graph.ok("GET", "/me/mailFolders/inbox/messages")["value"]
    assert [m["subject"] for m in inbox] == ["Before the clone"]
    # Mail after the clone is the original's alone.
    put(sandbox, "Inbox", "After the clone")
    assert len(ben_graph.ok("GET", "/me/mailFolders/inbox/messages")["value"]) == 1
    assert len(Graph(sandbox, template_token).ok("GET", "/me/mailFolders/inbox/messages")["value"]) == 2


def test_cloning_refuses_what_it_cannot_make(sandbox: SandboxProcess) -> None:
    graph_for(sandbox, "ana@acme.test")
    assert sandbox.control_response("POST", "/accounts/microsoft/ana@acme.test/clones",
                                    json={"emails": "ben@acme.test"}).status_code == 400
    assert sandbox.control_response("POST", "/accounts/microsoft/ana@acme.test/clones",
                                    json={"emails": ["ana@acme.test"]}).status_code == 400
    assert sandbox.control_response("POST", "/accounts/microsoft/nobody@acme.test/clones",
                                    json={"emails": ["ben@acme.test"]}).status_code == 404


@pytest.fixture
def request_limit(sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    yield sandbox
    sandbox.control("POST", "/reset")


def test_graph_refuses_a_mailbox_past_its_requests_in_10_minutes(request_limit: SandboxProcess) -> None:
    graph = graph_for(request_limit, "ana@acme.test")
    other = graph_for(request_limit, "ben@acme.test")
    limits = request_limit.control("POST", "/limits",
                                   json={"enabled": True, "graph_mailbox_requests_per_10_minutes": 3})
    assert limits["graph_mailbox_requests_per_10_minutes"] == 3
    for _ in range(2):
        graph.ok("GET", "/me/mailFolders")
    # A $batch's steps count one by one: the third request is allowed, the fourth is not.
    step = {"method": "GET", "url": "/me/mailFolders"}
    batch = graph.ok("POST", "/$batch", json={"requests": [{"id": "1", **step}, {"id": "2", **step}]})
    assert sorted(step["status"] for step in batch["responses"]) == [200, 429]
    refused = graph.get("/me/mailFolders")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    other.ok("GET", "/me/mailFolders")  # another mailbox has a budget of its own
    bad = request_limit.control_response("POST", "/limits", json={"graph_mailbox_requests_per_10_minutes": 0})
    assert bad.status_code == 400
