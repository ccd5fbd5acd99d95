"""Test settings: Q_CLUSTER is read at import time, so tests get their own module."""

import os
import sys

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")

from config.settings import *  # noqa: E402,F403
from config.settings import BASE_DIR, DATABASES, Q_CLUSTER  # noqa: E402

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: live servers and qcluster processes open the same test database.
    # One per test run, so that runs side by side do not share it.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-relay-{os.getpid()}.sqlite3")}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Commits do not wait for the WAL to reach the disk, as the SQLite tests' synchronous=NORMAL
    # does not: on a machine with a slow disk every commit's flush made the PostgreSQL run several
    # times slower than the SQLite one (a crash of the test server itself is not what tests test).
    # No statement waits more than a minute for a lock: a test that would is stopped with the
    # sessions that held it in its report (tests/lock_waits.py), not by pytest-timeout minutes later.
    # A statement whose client is gone (a test stopped by pytest-timeout, a killed worker) is
    # stopped within seconds, not left to run on holding its locks while the next tests wait.
    # Each session is named after the process that opened it (pytest, qcluster, gunicorn…).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        options="-c synchronous_commit=off -c lock_timeout=60s -c client_connection_check_interval=2s",
        application_name=f"{os.path.basename(sys.argv[0])[:40]}-{os.getpid()}",
    )

# WhiteNoise warns on every request when STATIC_ROOT is missing (tests do not collect static).
(BASE_DIR / "var" / "static").mkdir(parents=True, exist_ok=True)

# RELAY_WORKERS lets a test run the worker with more processes (the concurrency tests: 4), and
# RELAY_TEST_QUEUE_POLL with a longer poll (the doorbell's test: only a ring can be that fast).
Q_CLUSTER = {
    **Q_CLUSTER,
    "name": "relay-test",
    "workers": int(os.environ.get("RELAY_WORKERS", "3")),
    "poll": float(os.environ.get("RELAY_TEST_QUEUE_POLL", "0.1")),
}
# Tests never reach the real Intercom: forwarding goes to the sandbox the test starts.
INTERCOM_ACCESS_TOKEN = os.environ.get("INTERCOM_ACCESS_TOKEN", "test-intercom-token")
# Live-server threads must not keep connections open past a test (PostgreSQL refuses to drop the
# test database while any session uses it).
DATABASES["default"]["CONN_MAX_AGE"] = 0
