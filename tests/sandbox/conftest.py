from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.runner import SandboxProcess, start_sandbox


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    handle = start_sandbox(ca_dir=Path(tmp_path_factory.mktemp("sandbox-ca")))
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    """The running sandbox, emptied before each test."""
    sandbox_server.control("POST", "/reset")
    return sandbox_server
