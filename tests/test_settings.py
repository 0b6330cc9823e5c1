"""Settings are strict about what they read, take secrets from files, and touch no disk when read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

PRODUCTION = {
    "DEBUG": "false", "ALLOWED_HOSTS": "aspire.example",
    "TOKEN_ENCRYPTION_KEYS": "ZGV2LW9ubHktdG9rZW4ta2V5LW5vdC1mb3ItcHJvZCE=",
}


def read_settings(env: dict[str, str], expression: str = "None") -> subprocess.CompletedProcess[str]:
    """Import the settings module in a fresh interpreter with only ``env`` (and PATH) set."""
    script = f"import aspire_sync.settings as s; print(repr({expression}))"
    return subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=60)


@pytest.mark.parametrize("value", ["flase", "maybe", "2", "enabled", "t rue"])
def test_an_unrecognised_boolean_is_refused(value: str) -> None:
    result = read_settings({"DEBUG": value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DEBUG must be true or false" in result.stderr
    assert repr(value) in result.stderr


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("YES", True), ("on", True), ("1", True),
                                                 ("false", False), ("No", False), ("off", False), ("0", False)])
def test_the_usual_spellings_of_a_boolean_are_read(value: str, expected: bool) -> None:
    result = read_settings({"SESSION_COOKIE_SECURE": value}, "s.SESSION_COOKIE_SECURE")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("from-a-file-" + "x" * 50 + "\n")
    (tmp_path / "client_secret").write_text("graph-client-secret\n")
    result = read_settings({**PRODUCTION, "SECRET_KEY_FILE": str(tmp_path / "secret_key"),
                            "MICROSOFT_CLIENT_SECRET_FILE": str(tmp_path / "client_secret")},
                           "(s.SECRET_KEY[:12], s.MICROSOFT_CLIENT_SECRET)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(("from-a-file-", "graph-client-secret"))


def test_a_secret_file_that_cannot_be_read_or_a_secret_set_twice_is_refused(tmp_path: Path) -> None:
    missing = read_settings({**PRODUCTION, "SECRET_KEY_FILE": str(tmp_path / "nowhere")})
    assert missing.returncode != 0 and "SECRET_KEY_FILE names" in missing.stderr
    (tmp_path / "key").write_text("k" * 60)
    both = read_settings({**PRODUCTION, "SECRET_KEY": "k" * 60, "SECRET_KEY_FILE": str(tmp_path / "key")})
    assert both.returncode != 0 and "Set SECRET_KEY or SECRET_KEY_FILE, not both" in both.stderr


def test_reading_the_settings_makes_no_folders(tmp_path: Path) -> None:
    database, broker, metrics = tmp_path / "db" / "demo.sqlite3", tmp_path / "broker", tmp_path / "metrics"
    result = read_settings({"DATABASE_URL": f"sqlite:///{database}", "CELERY_BROKER_DIR": str(broker),
                            "PROMETHEUS_MULTIPROC_DIR": str(metrics)})
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    # The apps make them when they are loaded, as every command and worker does.
    script = "import django; django.setup()"
    subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, check=True, timeout=60,
                   env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "aspire_sync.settings",
                        "DATABASE_URL": f"sqlite:///{database}", "CELERY_BROKER_DIR": str(broker),
                        "PROMETHEUS_MULTIPROC_DIR": str(metrics)})
    assert database.parent.is_dir() and (broker / "queue").is_dir() and (broker / "processed").is_dir()
    assert metrics.is_dir()


def test_mail_is_configured_by_one_url() -> None:
    result = read_settings({"EMAIL_URL": "smtp+tls://aspire:s%40cret@mail.example:587"},
                           "(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD,"
                           " s.EMAIL_USE_TLS)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(("django.core.mail.backends.smtp.EmailBackend", "mail.example", 587,
                                          "aspire", "s@cret", True))
    console = read_settings({"EMAIL_URL": "consolemail://"}, "s.EMAIL_BACKEND")
    assert console.stdout.strip() == repr("django.core.mail.backends.console.EmailBackend")


@pytest.mark.parametrize("env", [{"EMAIL_URL": "carrier-pigeon://coop"},
                                 {"EMAIL_URL": "consolemail://", "EMAIL_BACKEND": "x.EmailBackend"}])
def test_a_bad_mail_url_is_refused(env: dict[str, str]) -> None:
    result = read_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_links_in_mail_point_at_the_public_address() -> None:
    result = read_settings({"OAUTH_REDIRECT_URI": "https://crm.example/settings/mailbox/callback/"}, "s.SITE_URL")
    assert result.stdout.strip() == repr("https://crm.example")
    result = read_settings({"SITE_URL": "https://aspire.example/"}, "s.SITE_URL")
    assert result.stdout.strip() == repr("https://aspire.example")


@pytest.mark.parametrize(("env", "message"), [
    ({"CELERY_WORKER_POOL": "gevent-ish"}, "CELERY_WORKER_POOL must be threads, prefork or solo"),
    ({"CELERY_WORKER_CONCURRENCY": "0"}, "CELERY_WORKER_CONCURRENCY must be at least 1"),
    ({"QUOTA_HEADROOM": "1.5"}, "QUOTA_HEADROOM must be in (0, 1]"),
    ({"QUOTA_FAIR_SHARE_FROM": "-1"}, "QUOTA_FAIR_SHARE_FROM in [0, 1]"),
])
def test_worker_pool_and_quota_settings_out_of_range_are_refused(env: dict[str, str], message: str) -> None:
    result = read_settings({"DEBUG": "true", **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_workers_run_in_threads_by_default() -> None:
    result = read_settings({"DEBUG": "true"}, "(s.CELERY_WORKER_POOL, s.CELERY_WORKER_CONCURRENCY)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('threads', 16)"


POSTGRES = "postgres://aspire@db.example:5432/aspire"


def test_the_database_pool_is_configured_from_the_environment() -> None:
    result = read_settings({"DATABASE_URL": POSTGRES, "DATABASE_POOL": "true", "CELERY_WORKER_CONCURRENCY": "24"},
                           "(s.DATABASES['default']['CONN_MAX_AGE'], s.DATABASES['default']['OPTIONS']['pool'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr((0, {"min_size": 2, "max_size": 24, "timeout": 10.0}))
    sized = read_settings({"DATABASE_URL": POSTGRES, "DATABASE_POOL": "true", "CONN_MAX_AGE": "0",
                           "DATABASE_POOL_MIN_SIZE": "1", "DATABASE_POOL_MAX_SIZE": "8",
                           "DATABASE_POOL_TIMEOUT": "2.5"}, "s.DATABASES['default']['OPTIONS']['pool']")
    assert sized.stdout.strip() == repr({"min_size": 1, "max_size": 8, "timeout": 2.5}), sized.stderr
    off = read_settings({"DATABASE_URL": POSTGRES}, "('pool' in s.DATABASES['default'].get('OPTIONS', {}), "
                                                    "s.DATABASES['default']['CONN_MAX_AGE'])")
    assert off.stdout.strip() == repr((False, 60)), off.stderr


@pytest.mark.parametrize(("env", "message"), [
    ({"DATABASE_URL": POSTGRES, "DATABASE_POOL": "true", "CONN_MAX_AGE": "60"}, "Set DATABASE_POOL or CONN_MAX_AGE"),
    ({"DATABASE_POOL": "true"}, "DATABASE_POOL needs PostgreSQL"),
    ({"DATABASE_URL": POSTGRES, "DATABASE_POOL": "true", "DATABASE_POOL_MIN_SIZE": "9",
      "DATABASE_POOL_MAX_SIZE": "4"}, "DATABASE_POOL_MIN_SIZE must be 0 to DATABASE_POOL_MAX_SIZE"),
])
def test_a_database_pool_that_cannot_work_is_refused(env: dict[str, str], message: str) -> None:
    result = read_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL")
def test_threads_share_the_pool_and_give_their_connections_back(db: None) -> None:
    """Against the real server: threads run queries through the pool, and a closed connection goes
    back to it rather than to PostgreSQL (the server sees the same backends again)."""
    script = (
        "import django, threading; django.setup()\n"
        "from django.db import connection\n"
        "pids = set()\n"
        "def work():\n"
        "    with connection.cursor() as c:\n"
        "        c.execute('SELECT pg_backend_pid()'); pids.add(c.fetchone()[0])\n"
        "    connection.close()\n"
        "for _ in range(3):\n"
        "    threads = [threading.Thread(target=work) for _ in range(4)]\n"
        "    [t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(type(connection.pool).__name__, connection.pool.get_stats()['pool_max'], len(pids) <= 4)\n"
    )
    server, test_database = os.environ["DATABASE_URL"].rsplit("/", 1)[0], settings.DATABASES["default"]["NAME"]
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "aspire_sync.settings",
           "DATABASE_URL": f"{server}/{test_database}", "DATABASE_POOL": "true", "DATABASE_POOL_MAX_SIZE": "4"}
    result = subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ConnectionPool 4 True"
