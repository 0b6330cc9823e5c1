"""Start and stop a sandbox process, for tests, the demo and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SandboxProcess:
    port: int
    ca_dir: Path
    process: subprocess.Popen[bytes]
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.ca_dir / "ca.pem"

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the control API; ``path`` is relative to ``/_sandbox``."""
        response = self.control_response(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def control_response(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The control API's answer as it is, refusals included."""
        # verify= per call: a REQUESTS_CA_BUNDLE in the environment would override session.verify.
        return self.session.request(method, f"{self.base_url}/_sandbox{path}", timeout=30, verify=str(self.ca_path),
                                    **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.session.close()


def start_sandbox(
    *, ca_dir: Path, port: int | None = None, state: Path | None = None, timeout: float = 30.0,
    latency_ms: float = 0.0,
) -> SandboxProcess:
    port = port or free_port()
    command = [sys.executable, "-m", "sandbox", "--port", str(port), "--ca-dir", str(ca_dir)]
    if state is not None:
        command += ["--state", str(state)]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(command, cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    handle = SandboxProcess(port=port, ca_dir=ca_dir, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited with {process.returncode}")
        try:
            if handle.ca_path.exists():
                handle.control("GET", "/health")
                return handle
        except requests.RequestException:
            pass
        time.sleep(0.1)
    handle.stop()
    raise RuntimeError("sandbox did not start in time")
