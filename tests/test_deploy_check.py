from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7$k!q2v9#mZ4pLw8nR1tY6uB3eH0cJ5aF_gD-sK@oV&iX*yN^rT(zQ)wE+lM=hU",
    "ALLOWED_HOSTS": "sync.aspire.example",
    "DATABASE_URL": "postgres://aspire@db.internal:5432/aspire",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/1",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "TOKEN_ENCRYPTION_KEYS": "bXktcHJvZHVjdGlvbi10b2tlbi1rZXktMzItYnl0ZXM=",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "CELERY_BROKER_DIR"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_in_production_mode() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
