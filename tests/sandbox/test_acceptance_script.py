"""The sandbox acceptance script passes against a sandbox of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_acceptance_script_passes() -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/sandbox_acceptance.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = completed.stdout + completed.stderr
    failures = [line for line in completed.stdout.splitlines() if line.startswith("FAIL")]
    assert completed.returncode == 0 and not failures, f"exit code {completed.returncode}\n{output}"
