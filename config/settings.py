"""Settings for Intercom Relay: every value comes from an environment variable."""

from pathlib import Path

import dj_database_url

from config.env import envbool, envduration, envdurations, envint, envlist, envrate, envstr, envthrottle

BASE_DIR = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------
DEBUG = envbool("DJANGO_DEBUG", False)
# An empty key is refused by the `relay.E001` system check when DEBUG is off.
SECRET_KEY = envstr("DJANGO_SECRET_KEY") or ("insecure-development-key" if DEBUG else "")
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

DJANGO_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
# forwarding before django_q: its `qcluster` command (django-q2's cluster, with a watchdog)
# replaces django-q2's own.
THIRD_PARTY_APPS = ["rest_framework", "forwarding", "django_q"]
# The dashboard before the admin: its templates (admin/base_site.html, admin/nav_sidebar.html)
# override the admin's own.
LOCAL_APPS = ["dashboard.apps.DashboardConfig", "dashboard.apps.RelayAdminConfig"]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "forwarding.ingestion.hosts.JSONBadHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboard.middleware.RefuseNulMiddleware",
]
# Ingestion routes have no trailing slash and clients treat a redirect as delivered.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'relay.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write at once: WAL, a busy timeout and BEGIN IMMEDIATE. Connections
    # are kept (CONN_MAX_AGE above): django-q2's broker and workers close old connections around
    # every task, and a new one costs its PRAGMAs and a WAL check each time.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------------------
# Static files, i18n
# ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ------------------------------------------------------------------------------
# Security. Production is DJANGO_DEBUG off (the default): the secret key is required
# (relay.E001), cookies are HTTPS-only and plain HTTP redirects to HTTPS, except the ingestion
# API and /health, which never redirect (clients take a 3xx as delivered). `make run` serves
# http://127.0.0.1 with DJANGO_SECURE_COOKIES=false, which turns the redirect off too.
# `manage.py check --deploy` is clean once DJANGO_HSTS_SECONDS is set (and the two HSTS flags).
# ------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = envbool("DJANGO_SSL_REDIRECT", SESSION_COOKIE_SECURE)
# Clients that cannot follow a redirect (beacons, preflights, SDKs) reach these over plain HTTP too.
SECURE_REDIRECT_EXEMPT = [r"^v1/", r"^health$", r"^beacon/", r"^sourceConfig", r"^analytics\.js/", r"^analytics-next/"]
# Off by default: a browser that has seen it refuses plain HTTP to this host for that long.
SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("DJANGO_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto (else every request looks like HTTP
# and the redirect loops) and its X-Forwarded-For.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if envbool("DJANGO_BEHIND_PROXY", False) else None

# Dashboard logins (dashboard.throttle): after this many failed logins of one username, or of one
# client IP, within RELAY_LOGIN_WINDOW, further attempts are refused without checking the password;
# counted in Redis with REDIS_URL, else in the database. Behind a proxy the client IP is the first
# X-Forwarded-For hop (the proxy must set that header, not append to the client's).
AUTHENTICATION_BACKENDS = ["dashboard.auth.ThrottledModelBackend"]
RELAY_LOGIN_FAILURES_PER_USER = envint("RELAY_LOGIN_FAILURES_PER_USER", 10, minimum=1)
RELAY_LOGIN_FAILURES_PER_IP = envint("RELAY_LOGIN_FAILURES_PER_IP", 30, minimum=1)
RELAY_LOGIN_WINDOW = envduration("RELAY_LOGIN_WINDOW", "15m")

# /metrics (forwarding/metrics.py): off unless one is set. A bearer token Prometheus sends
# (`Authorization: Bearer <token>`), and/or the IPs and networks that may scrape
# ("10.0.0.0/8, 192.0.2.7"), matched against the connection's address. With both, a scrape needs both.
RELAY_METRICS_TOKEN = envstr("RELAY_METRICS_TOKEN")
RELAY_METRICS_ALLOW = envstr("RELAY_METRICS_ALLOW")
RELAY_BEHIND_PROXY = envbool("DJANGO_BEHIND_PROXY", False)
# The operator API (/api/v1/, dashboard/api): requests per token, DRF's form ("600/min", "20/s",
# "5000/hour") or "off". A wrong value stops the start, not a request.
RELAY_API_RATE = envthrottle("RELAY_API_RATE", "600/min")

# ------------------------------------------------------------------------------
# Logging: to stderr; the request body and Authorization header are never logged, and write keys
# in URLs (`?writeKey=`, /v1/projects/<key>/settings) are blanked out (config.logfilters).
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "per_task_to_debug": {"()": "config.logfilters.PerTaskToDebug"},
        "redact_write_keys": {"()": "config.logfilters.RedactWriteKeys"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["per_task_to_debug", "redact_write_keys"],
        }
    },
    "root": {"handlers": ["stderr"], "level": envstr("RELAY_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's request lines, with DEBUG on as Django has them, but through the handler
        # above: Django's own would write them without the redaction.
        "django.server": {
            "handlers": ["stderr"],
            "filters": ["require_debug_true"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# ------------------------------------------------------------------------------
# Django REST framework: ingestion authenticates write keys itself.
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

# ------------------------------------------------------------------------------
# Ingestion limits
# ------------------------------------------------------------------------------
RELAY_MAX_MESSAGE_BYTES = envint("RELAY_MAX_MESSAGE_BYTES", 32 * 1024, minimum=1024)
RELAY_MAX_REQUEST_BYTES = envint("RELAY_MAX_REQUEST_BYTES", 500 * 1024, minimum=1024)
# RudderStack clients send batches of up to 4 MB.
RELAY_MAX_RUDDER_REQUEST_BYTES = envint("RELAY_MAX_RUDDER_REQUEST_BYTES", 4 * 1024 * 1024, minimum=1024)
# A batch with more messages is refused whole (400 too_many_messages) before anything is stored.
RELAY_MAX_BATCH_MESSAGES = envint("RELAY_MAX_BATCH_MESSAGES", 2500, minimum=1)
# Rejected messages stored one by one per write key and minute; past it they are only counted,
# in one row per write key and minute. Kept RELAY_REJECTED_RETENTION_DAYS (they are for debugging).
RELAY_MAX_REJECTED_PER_MINUTE = envint("RELAY_MAX_REJECTED_PER_MINUTE", 100, minimum=0)
RELAY_REJECTED_RETENTION_DAYS = envint("RELAY_REJECTED_RETENTION_DAYS", 7, minimum=1)
# Clock skew is corrected only when sentAt and receivedAt differ by this much or more. A healthy
# client's request takes seconds to arrive (Segment's server libraries give up after 10-15 s, and
# they and analytics.js stamp sentAt again on every try; a stalled relay behind a proxy may hold one
# a minute or two), while a wrong device clock is off by minutes to hours. 0 corrects every gap.
RELAY_CLOCK_SKEW_THRESHOLD = envduration("RELAY_CLOCK_SKEW_THRESHOLD", "5m")
DATA_UPLOAD_MAX_MEMORY_SIZE = RELAY_MAX_RUDDER_REQUEST_BYTES + 1024
# (requests, seconds) per write key and fixed window, from "2000/10s" or "100/m"; None for "off".
# Shared by every web process: counted in Redis with REDIS_URL, else in the database.
RELAY_INGEST_RATE_LIMIT = envrate("RELAY_INGEST_RATE_LIMIT", "2000/10s")
RELAY_PUBLIC_URL = envstr("RELAY_PUBLIC_URL")

# ------------------------------------------------------------------------------
# Intercom
# ------------------------------------------------------------------------------
INTERCOM_ACCESS_TOKEN = envstr("INTERCOM_ACCESS_TOKEN")
INTERCOM_REGION = envstr("INTERCOM_REGION", "us")
INTERCOM_API_BASE = envstr("INTERCOM_API_BASE")
INTERCOM_API_VERSION = envstr("INTERCOM_API_VERSION", "2.16")
INTERCOM_EVENT_NAME_LIMIT = envint("INTERCOM_EVENT_NAME_LIMIT", 120, minimum=1)
INTERCOM_PAGE_EVENT_NAME = envstr("INTERCOM_PAGE_EVENT_NAME", "viewed-page")
INTERCOM_CREATE_ATTRIBUTES = envbool("INTERCOM_CREATE_ATTRIBUTES", True)
# Custom data attributes a workspace may hold (Intercom's limit is 250).
INTERCOM_ATTRIBUTE_LIMIT = envint("INTERCOM_ATTRIBUTE_LIMIT", 250, minimum=1)
INTERCOM_CONNECT_TIMEOUT = envint("INTERCOM_CONNECT_TIMEOUT", 5, minimum=1)
INTERCOM_READ_TIMEOUT = envint("INTERCOM_READ_TIMEOUT", 20, minimum=1)

# ------------------------------------------------------------------------------
# Delivery
# ------------------------------------------------------------------------------
RELAY_WAIT_FOR_IDENTIFY = envduration("RELAY_WAIT_FOR_IDENTIFY", "7d")
RELAY_RETRY_SCHEDULE = envdurations("RELAY_RETRY_SCHEDULE", "10s,1m,5m,30m,2h,6h,12h,24h")
# 401/403: the token is wrong; deliveries wait this long between tries, without limit.
RELAY_AUTH_RETRY_SECONDS = envduration("RELAY_AUTH_RETRY_SECONDS", "5m")
RELAY_LEASE_SECONDS = envduration("RELAY_LEASE_SECONDS", "2m")
# How often the sweeper looks for due retries, expired leases and lost tasks.
RELAY_SWEEP_INTERVAL = envduration("RELAY_SWEEP_INTERVAL", "5s")
# A due delivery enqueued this long ago is enqueued again by the sweeper (its task was lost).
RELAY_REENQUEUE_AFTER = envduration("RELAY_REENQUEUE_AFTER", "60s")
# A cluster that finishes no task for this long while deliveries are overdue is stalled: its
# watchdog restarts it (a healthy task ends within its 40 s budget; the sweeper beats every pass).
RELAY_STALL_SECONDS = envduration("RELAY_STALL_SECONDS", "90s")
RELAY_PAYLOAD_RETENTION_DAYS = envint("RELAY_PAYLOAD_RETENTION_DAYS", 30, minimum=1)
RELAY_LOG_RETENTION_DAYS = envint("RELAY_LOG_RETENTION_DAYS", 90, minimum=1)

# ------------------------------------------------------------------------------
# Task queue (django-q2): the ORM broker in the same database unless REDIS_URL is set.
# A delivery failure is an outcome the task records; raising is for bugs, so the
# queue's own retry only covers a worker that died mid-task (the sweeper does too).
# ------------------------------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
Q_CLUSTER = {
    "name": "relay",
    # Deliveries wait on Intercom, not the CPU: more workers than cores (one also runs the sweeper).
    "workers": envint("RELAY_WORKERS", 4, minimum=1),
    # A worker process is replaced by a fresh one after this many tasks (django-q2's default).
    "recycle": envint("RELAY_WORKER_RECYCLE", 500, minimum=1),
    "timeout": 60,
    "retry": 90,
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "poll": 0.2,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # The ORM broker whose pusher is woken by each commit of tasks rather than polling for them.
    Q_CLUSTER["broker_class"] = "forwarding.delivery.doorbell.DoorbellORM"
