"""Real processes for end-to-end tests: a django-q2 cluster on the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url():
    """A DATABASE_URL for the test database this process is using."""
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def relay_env(**extra):
    """The environment of a child process of the relay, pointed at the test database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=test_database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Cluster:
    """`manage.py qcluster` in its own process group."""

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.log = open(log_path, "a")  # noqa: SIM115 (closed in stop)
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ensure_running(self):
        if self.process.poll() is not None:
            self.start()

    def kill(self, sig=signal.SIGKILL, timeout=30):
        """Signal the whole cluster (guard, pusher, workers, monitor) at once."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=timeout)

    def stop(self):
        """A graceful stop, then SIGKILL for whatever is left of the group."""
        if self.process.poll() is None:
            try:
                self.kill(signal.SIGTERM, timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()

    def output(self):
        return Path(self.log_path).read_text(errors="replace")


def wait_until(predicate, timeout=30.0, interval=0.2, message="condition"):
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
