"""docs/providers.md names, for each provider call and limit, the sandbox test that shows it: each
of those tests exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_NAME = re.compile(r"`(test_[a-z_]+\.py)::(test_[a-z0-9_]+)`")


def test_every_test_named_in_the_provider_docs_exists() -> None:
    named = TEST_NAME.findall((ROOT / "docs" / "providers.md").read_text())
    assert len(named) > 60
    missing = [f"{module}::{name}" for module, name in set(named)
               if not re.search(rf"^def {name}\(", (ROOT / "tests" / "sandbox" / module).read_text(), re.MULTILINE)]
    assert not missing, missing
