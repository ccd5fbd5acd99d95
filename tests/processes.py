"""Real processes for end-to-end tests: a django-q2 cluster on the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
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


STALE_DIR = ROOT / "var" / "test-qclusters"
# Every cluster this test run created.
CLUSTERS = []


def kill_stale_clusters():
    """Kill clusters left behind by a test run that was itself killed (its fixtures never ran)."""
    STALE_DIR.mkdir(parents=True, exist_ok=True)
    for marker in STALE_DIR.iterdir():
        owner, _, group = marker.name.partition("-")
        if owner.isdigit() and group.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                os.killpg(int(group), signal.SIGKILL)
            except ProcessLookupError:
                pass
            marker.unlink(missing_ok=True)


class Cluster:
    """`manage.py qcluster` in its own process group."""

    def __init__(self, env, log_path):
        self.base_env = dict(env)
        self.env = env
        self.log_path = log_path
        self.log = open(log_path, "a")  # noqa: SIM115 (closed in stop)
        self.process = None
        CLUSTERS.append(self)
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
        self.marker = STALE_DIR / f"{os.getpid()}-{self.process.pid}"
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.touch()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def ensure_running(self):
        if self.process.poll() is not None:
            self.start()

    def configure(self, **settings):
        """Run with these environment settings (restarting only when they change)."""
        env = {**self.base_env, **{key: str(value) for key, value in settings.items()}}
        if env != self.env:
            self.stop(close_log=False)
            self.env = env
            self.start()
        else:
            self.ensure_running()

    def kill(self, sig=signal.SIGKILL, timeout=30):
        """Signal the whole cluster (guard, pusher, workers, monitor) at once."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=timeout)

    def stop(self, close_log=True, graceful=False):
        """Stop the cluster: SIGTERM to its main process when graceful (a SIGTERM to the whole
        group can hang it), then SIGKILL for whatever is left of the group."""
        if graceful and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.marker.unlink(missing_ok=True)
        if close_log:
            self.log.close()

    def output(self):
        return Path(self.log_path).read_text(errors="replace")


def children(pid):
    """Live child processes of `pid`, oldest first (from /proc)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(fields[19]), int(entry)))  # start time, pid
    return [child for _, child in sorted(found)]


def spawned_workers(cluster):
    """The cluster's worker processes as its sentinel spawned them: the sentinel's first children
    (it spawns its workers before the monitor and the pusher; a worker spawned later, in place of
    another, comes after those two). Empty before the sentinel is up."""
    sentinels = children(cluster.process.pid)
    return children(sentinels[0])[: settings.Q_CLUSTER["workers"]] if sentinels else []


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
