"""Settings, read from the environment (django-environ).

A fresh checkout runs with safe local defaults (SQLite, an embedded Celery broker, DEBUG on).
Production sets ``DEBUG=false`` and must then provide ``SECRET_KEY`` and ``ALLOWED_HOSTS``;
see README.md, "Configuration".
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".demo"  # SQLite file and the embedded broker's folders, for local runs

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def env_bool(name: str, *, default: bool) -> bool:
    """A yes/no setting. Anything but the usual spellings is refused: a typo such as
    ``DEBUG=flase`` must not quietly mean one or the other."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (yes/no, on/off, 1/0 also work), not {raw!r}.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def env_secret(name: str, *, default: str = "") -> str:
    """A secret from ``NAME``, or from the file ``NAME_FILE`` names (Docker and Kubernetes secrets),
    so it need not sit in the process environment; setting both is refused."""
    path = os.environ.get(f"{name}_FILE", "").strip()
    if not path:
        return os.environ.get(name, default)
    if os.environ.get(name):
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE names {path}, which cannot be read ({exc.strerror}).") from exc


DEBUG = env_bool("DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
SECRET_KEY = env_secret("SECRET_KEY", default="" if not DEBUG else _DEV_SECRET_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "csp",
    "accounts",
    "crm",
    "activities",
    "mailsync",
    "calendarsync",
    "ops",
    "bench",
    "aspire_sync",
]

MIDDLEWARE = [
    # Request counts and latencies for the metrics endpoint (django-prometheus): first and last.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body: a request declared over MAX_REQUEST_BYTES is refused unread.
    "accounts.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.ContentSecurityPolicyMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    # Last, as django-axes asks: it turns a lockout into the page below.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

if not DEBUG:
    # Serves collected static files in production; in development runserver serves them.
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "aspire_sync.urls"
WSGI_APPLICATION = "aspire_sync.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.signin_banner",
            ],
            "builtins": ["accounts.templatetags.moments"],  # {{ value|moment }}: accounts.moments
        },
    },
]

DATABASES = {"default": env.db_url_config(env_secret("DATABASE_URL", default=f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}"))}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the zero-setup demo database; the web app, worker and beat share it, so wait
    # for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction starts: a transaction that reads first and writes later
    # cannot wait for the lock, and the demo's web app, workers and beat share this one file.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # A file, not memory, so a worker process started by a test sees the test database.
    # One per test process, so two test runs in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(LOCAL_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_secret("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a sign-in while the account or the address is locked out.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "crm:contact_list"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Mail Aspire sends (password-reset links from the admin, "needs sign-in" and "please reconnect"
# notices) goes through Django's email backend: the console locally (`make demo` keeps it in files,
# shown at /dev/mail/), SMTP in production. Either one URL, EMAIL_URL (django-environ's form:
# smtp+tls://user:password@host:587, smtps://user:password@host:465, consolemail://), or the separate
# EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend" if DEBUG
                        else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = False
# Seconds to wait for the mail server: a needs-sign-in notice is sent by the worker whose run found
# it, which must not hang on an unreachable server (Django's own default is to wait forever).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Where django.core.mail.backends.filebased.EmailBackend writes, when that is the backend.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(LOCAL_DIR / "sent-mail"))
if _email_url := env_secret("EMAIL_URL"):  # it may carry the SMTP password
    if os.environ.get("EMAIL_BACKEND"):
        raise ImproperlyConfigured("Set EMAIL_URL or EMAIL_BACKEND, not both.")
    _email = environ.Env.email_url_config(_email_url)  # an unknown scheme is refused (ImproperlyConfigured)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or EMAIL_HOST
    EMAIL_PORT = int(_email.get("EMAIL_PORT") or EMAIL_PORT)
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Aspire <no-reply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
TIME_ZONES = sorted(available_timezones() - {"localtime", "Factory"})

# Captured attachments. Files are served only through views that check tenancy, never by URL.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(LOCAL_DIR / "media")))
MEDIA_URL = "/media-not-served/"
# Attachments larger than this are listed on the email, not stored.
MAX_ATTACHMENT_BYTES = env.int("MAX_ATTACHMENT_BYTES", default=35 * 1024 * 1024)
MAIL_SPOOL_DIR = Path(env.str("MAIL_SPOOL_DIR", default=str(LOCAL_DIR / "spool")))

# Metrics (Prometheus). Web and workers are separate processes, so prometheus_client keeps each
# process's samples in files in this folder and a scrape adds them up; the library reads the
# folder from the environment when it is imported (after settings), and it must exist by then.
# Production gives each container a fresh, empty folder (docker-compose.yml: a tmpfs).
# Reference: https://prometheus.github.io/client_python/multiprocess/
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(LOCAL_DIR / "metrics")))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# /metrics answers only a request carrying this bearer token; unset, it does not exist (404).
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# A worker host serves its own processes' metrics on this port (0: not at all), unauthenticated:
# bind it to the hosts' private network only.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security. In production (DEBUG off) every `check --deploy` item is on by default; each can be
# relaxed from the environment, e.g. SECURE_SSL_REDIRECT=false behind a proxy that redirects.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Health checks and Prometheus often reach a web host directly on the private network, without the
# TLS proxy: those two answer there instead of redirecting (/metrics still needs its token).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every page (django-csp): our own scripts, styles and requests only.
# Forms may also lead to the providers' sign-in pages (added per request from the settings above,
# by accounts.middleware). The email page sends a stricter policy of its own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# Mail providers. Defaults are the real services; the demo and the tests point every URL at the
# local provider sandbox and trust its CA through PROVIDER_CA_BUNDLE (verification stays on).
PROVIDER_CA_BUNDLE = env.str("PROVIDER_CA_BUNDLE", default="") or None
OAUTH_REDIRECT_URI = env.str("OAUTH_REDIRECT_URI", default="http://127.0.0.1:8000/settings/mailbox/callback/")
# Where people open Aspire, for the links in the mail it sends; by default the origin of the
# sign-in callback above, which is already the public address.
SITE_URL = (env.str("SITE_URL", default="") or _origin(OAUTH_REDIRECT_URI)).rstrip("/")
OAUTH_SIGNIN_TTL_SECONDS = 600
MICROSOFT_CLIENT_ID = env.str("MICROSOFT_CLIENT_ID", default="")
MICROSOFT_CLIENT_SECRET = env_secret("MICROSOFT_CLIENT_SECRET")
MICROSOFT_AUTHORITY = env.str("MICROSOFT_AUTHORITY", default="https://login.microsoftonline.com/organizations")
MICROSOFT_GRAPH_URL = env.str("MICROSOFT_GRAPH_URL", default="https://graph.microsoft.com/v1.0")
GOOGLE_CLIENT_ID = env.str("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env_secret("GOOGLE_CLIENT_SECRET")
GOOGLE_AUTH_URI = env.str("GOOGLE_AUTH_URI", default="https://accounts.google.com/o/oauth2/v2/auth")
GOOGLE_TOKEN_URI = env.str("GOOGLE_TOKEN_URI", default="https://oauth2.googleapis.com/token")
GOOGLE_REVOKE_URI = env.str("GOOGLE_REVOKE_URI", default="https://oauth2.googleapis.com/revoke")
GOOGLE_API_ENDPOINT = env.str("GOOGLE_API_ENDPOINT", default="") or None

# Push notifications: the public https base URL of this app, where Graph and Google Pub/Sub can
# reach the webhooks. Empty: no push, the hourly run (and "Sync now") still bring mail in.
PUSH_BASE_URL = env.str("PUSH_BASE_URL", default="").rstrip("/")
GOOGLE_PUBSUB_TOPIC = env.str("GOOGLE_PUBSUB_TOPIC", default="")
# Gmail pushes are authenticated by the token Pub/Sub signs for the push subscription's service
# account (its email here; empty refuses every push) and audience (empty: the push URL, Pub/Sub's
# default), checked against Google's certificates (the sandbox's, locally).
GOOGLE_PUBSUB_SERVICE_ACCOUNT = env.str("GOOGLE_PUBSUB_SERVICE_ACCOUNT", default="")
GOOGLE_PUBSUB_AUDIENCE = env.str("GOOGLE_PUBSUB_AUDIENCE", default="")
GOOGLE_PUBSUB_CERTS_URL = env.str("GOOGLE_PUBSUB_CERTS_URL", default="https://www.googleapis.com/oauth2/v1/certs")

# OAuth tokens are encrypted at rest with these Fernet keys (comma-separated, newest first). Add a
# new key in front, run `manage.py rotate_token_keys`, then drop the old one.
_DEV_TOKEN_KEY = "ZGV2LW9ubHktdG9rZW4ta2V5LW5vdC1mb3ItcHJvZCE="  # development only
TOKEN_ENCRYPTION_KEYS = [key.strip() for key in env_secret("TOKEN_ENCRYPTION_KEYS").split(",") if key.strip()] or (
    [_DEV_TOKEN_KEY] if DEBUG else [])
if not TOKEN_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS must be set when DEBUG is off.")

# Celery. The default broker is kombu's filesystem transport, which needs no server, so the
# demo runs on a bare machine; production points CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The folders are made when the apps are ready (aspire_sync.apps), not when settings are read.
    _broker_dir = Path(env.str("CELERY_BROKER_DIR", default=str(LOCAL_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers a task its worker never acknowledged after this long. It must exceed the
    # longest countdown a worker holds (retries wait at most 15 minutes, and a send is never put
    # off further than 5), or such tasks would be delivered twice. Recovering from a killed
    # worker does not wait for it: leases lapse in minutes and the dispatcher resumes that work
    # from the database (aspire_sync.scheduling.recover_interrupted).
    # Reference: https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#caveats
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_RESULT_BACKEND = None  # tasks record their outcome in the database, not in a result store
# A capture or calendar run renews its lease after every page; one that stops renewing (its
# worker was killed) is picked up again by the dispatcher this long after its last renewal.
SYNC_RUN_LEASE_SECONDS = env.int("SYNC_RUN_LEASE_SECONDS", default=120)
# The providers' quotas (accounts.quotas), shared through Redis: (units, window in seconds) per
# mailbox and per application across all tenants. Graph counts requests, Gmail quota units.
# Reference: https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
# Reference: https://learn.microsoft.com/en-us/graph/throttling-limits (global: 130,000 per 10 s per app)
# Reference: https://developers.google.com/workspace/gmail/api/reference/quota
# (a minute: 15,000 units per user, 250 a second, as providers.google.quota paces; projects created
# since May 2026 get 6,000 a user: set the mailbox figure to (6_000, 60) for one of those;
# 1,200,000 per project)
PROVIDER_QUOTAS = {
    "microsoft": {"mailbox": (10_000, 600), "application": (130_000, 10)},
    "google": {"mailbox": (15_000, 60), "application": (1_200_000, 60)},
}
QUOTA_HEADROOM = env.float("QUOTA_HEADROOM", default=0.9)
# Past this share of the application's budget, each company is held to its fair share.
QUOTA_FAIR_SHARE_FROM = env.float("QUOTA_FAIR_SHARE_FROM", default=0.5)
if not (0 < QUOTA_HEADROOM <= 1 and 0 <= QUOTA_FAIR_SHARE_FROM <= 1):
    raise ImproperlyConfigured("QUOTA_HEADROOM must be in (0, 1] and QUOTA_FAIR_SHARE_FROM in [0, 1].")
# Graph's 4 concurrent requests per mailbox, shared in Redis (accounts.quotas.graph_slots): how long
# a slot is held at most when its holder dies (more than the slowest request: a 4 MB upload within
# the 30 s timeouts), and how long a request waits for a free slot before it is throttled.
GRAPH_SLOT_LEASE_SECONDS = env.float("GRAPH_SLOT_LEASE_SECONDS", default=120.0)
GRAPH_SLOT_WAIT_SECONDS = env.float("GRAPH_SLOT_WAIT_SECONDS", default=20.0)
if GRAPH_SLOT_LEASE_SECONDS <= 0 or GRAPH_SLOT_WAIT_SECONDS < 0:
    raise ImproperlyConfigured("GRAPH_SLOT_LEASE_SECONDS must be positive and GRAPH_SLOT_WAIT_SECONDS not negative.")
CELERY_TASK_DEFAULT_QUEUE = "default"
# A task is acknowledged after it finishes, so a worker killed mid-task leaves it for another
# worker; tasks are written to be idempotent, so running one twice does no harm.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A sync run is mostly waiting for the provider: a worker runs tasks in a pool of threads, so one
# process keeps many runs in flight (one process per core; docs/scale.md). The threads pool does
# not enforce the time limits below: every provider call has its own timeout instead.
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=16)
if CELERY_WORKER_POOL not in ("threads", "prefork", "solo"):
    raise ImproperlyConfigured(f"CELERY_WORKER_POOL must be threads, prefork or solo, not {CELERY_WORKER_POOL!r}.")
if CELERY_WORKER_CONCURRENCY < 1:
    raise ImproperlyConfigured("CELERY_WORKER_CONCURRENCY must be at least 1.")

# psycopg's connection pool, per process (Django 5.1+, PostgreSQL only; docs/operations.md): each
# thread takes a connection for a request or task and gives it back afterwards. Django refuses a
# pool with persistent connections, so with the pool on, CONN_MAX_AGE is 0 and may not be set.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
if DATABASE_POOL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOL needs PostgreSQL (DATABASE_URL=postgres://...).")
    if "CONN_MAX_AGE" in os.environ and DATABASES["default"]["CONN_MAX_AGE"] != 0:
        raise ImproperlyConfigured("Set DATABASE_POOL or CONN_MAX_AGE, not both: the pool keeps the connections.")
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    _pool = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        # A thread holds at most one connection: a worker's threads never wait for one.
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=max(4, CELERY_WORKER_CONCURRENCY)),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
    if not 0 <= _pool["min_size"] <= _pool["max_size"] or _pool["max_size"] < 1 or _pool["timeout"] <= 0:
        raise ImproperlyConfigured("DATABASE_POOL_MIN_SIZE must be 0 to DATABASE_POOL_MAX_SIZE (at least 1), "
                                   "and DATABASE_POOL_TIMEOUT above 0.")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
# Seeded into django-celery-beat's tables; operators change them in the admin from then on.
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-syncs": {
        "task": "sync.dispatch_due",
        "schedule": crontab(),  # every minute: each connection is due once an hour, at its own minute
        "options": {"queue": "default", "expires": 55},
    },
}
# Beat's scheduler also keeps the heartbeats (ops.beat): every HEARTBEAT_SECONDS it records its own
# and sends one to every queue; /healthz reports beat or a queue's workers down once its heartbeat
# is older than HEARTBEAT_STALE_SECONDS.
CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"
HEARTBEAT_SECONDS = env.int("HEARTBEAT_SECONDS", default=30)
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", default=3 * HEARTBEAT_SECONDS)
HEALTH_BROKER_TIMEOUT_SECONDS = env.float("HEALTH_BROKER_TIMEOUT_SECONDS", default=3.0)

# Sign-in throttling (django-axes), on /login/ and /admin/login/ alike: after AXES_FAILURE_LIMIT
# wrong passwords for one email address, or from one client address, that email or address is
# locked out for AXES_COOLOFF_MINUTES; operators unlock earlier in the admin ("Access attempts").
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.signin_throttle.locked_out"
AXES_USERNAME_CALLABLE = "accounts.signin_throttle.attempted_email"
AXES_CLIENT_IP_CALLABLE = "accounts.signin_throttle.client_address"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not recorded: only what throttling needs

# Logs: JSON lines in production (python-json-logger), one field per id of the work in progress
# (company_id, connection_id, run_id); plain text locally. Every handler drops query strings and
# redacts whatever looks like a credential (aspire_sync.log_filters).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
_LOG_FILTERS = ["work_context", "no_query_strings", "redact_secrets"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {
        "work_context": {"()": "aspire_sync.log_filters.WorkContext"},
        # Query strings carry secrets (the OAuth callback's code and state): no log keeps them.
        "no_query_strings": {"()": "aspire_sync.log_filters.StripQueryStrings"},
        "redact_secrets": {"()": "aspire_sync.log_filters.RedactSecrets"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": _LOG_FILTERS},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # These log whole token requests and responses at DEBUG: never let tokens reach a log,
        # whatever LOG_LEVEL an operator picks.
        **{
            name: {"level": "WARNING"}
            for name in ("requests_oauthlib", "oauthlib", "msal", "urllib3", "googleapiclient",
                         "google_auth_httplib2", "google.auth", "google_auth_oauthlib")
        },
    },
}
# Sending mail from Aspire (mailsync.sending). Each mailbox sends at most this many messages a
# minute: Exchange Online allows 30 per mailbox; Gmail charges 100 quota units per send against
# 250 a second and 15,000 a minute per user, so 60 a minute stays far below it.
MAIL_SEND_PER_MINUTE = {
    "microsoft": env.int("MAIL_SEND_PER_MINUTE_MICROSOFT", default=30),
    "google": env.int("MAIL_SEND_PER_MINUTE_GOOGLE", default=60),
}
# A sender that stops renewing its lease (its worker was killed mid-send) has its mailbox taken
# over this long after: longer than the slowest single send, a 25 MB upload.
MAIL_SEND_LEASE_SECONDS = env.int("MAIL_SEND_LEASE_SECONDS", default=600)
# A drain of a mailbox's queue that should have started this long ago is handed to the broker
# again by the every-minute sweep (its task was lost with a killed worker).
MAIL_DRAIN_LOST_AFTER_SECONDS = env.int("MAIL_DRAIN_LOST_AFTER_SECONDS", default=120)
# After a send whose outcome is unknown, wait this long before looking for it in the mailbox
# (Exchange files the sent copy a few seconds after accepting the message).
MAIL_SEND_VERIFY_DELAY_SECONDS = env.int("MAIL_SEND_VERIFY_DELAY_SECONDS", default=60)
# Attachments in all, per message: 25 MB grows to about 34 MB once base64-encoded, under the 35 MB
# that both the Gmail API and Exchange Online's default accept for a whole message.
MAIL_SEND_MAX_ATTACHMENT_BYTES = env.int("MAIL_SEND_MAX_ATTACHMENT_BYTES", default=25 * 1024 * 1024)
# The largest request body accepted (413 before it is read): a message with its attachments, plus
# room for its text and the form's encoding. The proxy in front should refuse the same (README).
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=MAIL_SEND_MAX_ATTACHMENT_BYTES + 3 * 1024 * 1024)
# Retention (hourly, ops.prune_records): each connection's last SYNC_RUN_KEEP_PER_CONNECTION run
# records, and every run that failed, paused or partly failed for SYNC_RUN_KEEP_FAILURES_DAYS;
# sent mail's stored attachments (also released as soon as a message is sent); what capture left in
# the spool longer ago than MAIL_SPOOL_MAX_AGE_SECONDS (longer than any task may run).
SYNC_RUN_KEEP_PER_CONNECTION = env.int("SYNC_RUN_KEEP_PER_CONNECTION", default=100)
SYNC_RUN_KEEP_FAILURES_DAYS = env.int("SYNC_RUN_KEEP_FAILURES_DAYS", default=30)
MAIL_SPOOL_MAX_AGE_SECONDS = env.int("MAIL_SPOOL_MAX_AGE_SECONDS", default=max(3600, 2 * CELERY_TASK_TIME_LIMIT))
CELERY_BEAT_SCHEDULE["prune-records"] = {
    "task": "ops.prune_records",
    "schedule": crontab(minute=23),  # hourly, off the top of the hour
    "options": {"queue": "default", "expires": 3000},
}
CELERY_BEAT_SCHEDULE["send-queued-mail"] = {
    "task": "mailsync.send_due_mail",
    "schedule": crontab(),  # every minute: picks up mail whose wait is over (retries, reconnects)
    "options": {"expires": 55},  # on the queue its task names (send)
}
