"""Fault injection: Intercom failing, workers killed, Redis and the web process restarted, while
2,000 calls for 200 users arrive through the Segment client. Afterwards every accepted call is
delivered exactly once as Intercom sees it."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from django.db.models import Count, Sum
from segment.analytics import Client

from forwarding.delivery import sweeper
from forwarding.models import Attempt, Call, Delivery, Source, State
from tests.processes import ROOT, relay_env, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
USERS = int(os.environ.get("RELAY_CHAOS_USERS", "200"))
TRACKS = 8  # + identify + group = 10 calls a user
REDIS = bool(os.environ.get("REDIS_URL"))
ERROR_RATE = 0.2  # of Intercom's answers, 500 or 503


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Web:
    """gunicorn serving the relay on the test database; restartable."""

    def __init__(self, env, log_path):
        self.env, self.port, self.log = env, free_port(), open(log_path, "a")  # noqa: SIM115
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{self.port}",
            "-w",
            "2",
            "--graceful-timeout",
            "5",
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self.healthy, 30, message="gunicorn to answer /health")

    def healthy(self):
        import requests

        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def restart(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.start()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


class Chaos(threading.Thread):
    """Every few seconds: kill the worker, a burst of 429s; once each: restart Redis and the web.

    The worker is the whole qcluster: SIGKILL of one of its child processes can leave django-q2's
    internal queue locked (django-q2 issue #23), which only a restart of the qcluster cures."""

    def __init__(self, cluster, sandbox, web):
        super().__init__(daemon=True)
        self.cluster, self.sandbox, self.web = cluster, sandbox, web
        self.stop_event = threading.Event()
        self.kills = self.bursts = self.redis_restarts = self.web_restarts = 0

    def run(self):
        tick = 0
        while not self.stop_event.wait(2.0):
            tick += 1
            if tick % 6 == 0:
                self.kill_a_worker()
            if tick % 5 == 0:
                self.burst_of_429()
            if tick == 4:
                self.web.restart()
                self.web_restarts += 1
            if tick == 7 and REDIS:
                self.restart_redis()

    def burst_of_429(self):
        """For one second Intercom answers every request 429 (its window exhausted by others)."""
        self.sandbox.configure(error_rate=1.0, error_statuses=[429])
        self.stop_event.wait(1.0)
        self.sandbox.configure(error_rate=ERROR_RATE, error_statuses=[500, 503])
        self.bursts += 1

    def kill_a_worker(self):
        """SIGKILL the worker (the qcluster process and its children, as a crashed machine or an
        OOM kill of the container would) and start it again, as its supervisor would."""
        self.cluster.kill(signal.SIGKILL)
        self.kills += 1
        self.cluster.start()

    def restart_redis(self):
        """Stop Redis (without saving: the queue's contents are gone) and start it again."""
        port = str(urlparse(os.environ["REDIS_URL"]).port or 6379)
        subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=30)
        time.sleep(1)
        options = ["--bind", "127.0.0.1", "--daemonize", "yes", "--save", "", "--appendonly", "no", "--dir", "/tmp"]
        subprocess.run(["redis-server", "--port", port, *options], check=True, capture_output=True, timeout=30)
        wait_until(lambda: subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).returncode == 0, 10)
        self.redis_restarts += 1


def send(url, key):
    failures = []
    client = Client(key, host=url, upload_size=50, max_retries=10, on_error=lambda e, batch: failures.append(e))
    for user in range(USERS):
        client.identify(f"chaos-{user}", {"email": f"chaos-{user}@example.com", "plan": "pro"})
        client.group(f"chaos-{user}", f"org-{user % 20}", {"name": f"Org {user % 20}"})
    for n in range(TRACKS):
        for user in range(USERS):
            when = datetime(2026, 3, 1, 12, n, user % 60, tzinfo=UTC)
            client.track(f"chaos-{user}", f"Chaos Step {n}", {"n": n}, timestamp=when)
        time.sleep(0.5)  # spread the load over the chaos
    client.flush()
    client.join()
    return failures


@pytest.mark.timeout(720)
def test_it_delivers_every_call_once_through_faults_kills_and_restarts(cluster, sandbox, settings, tmp_path, capsys):
    source, key = Source.create_with_key("Chaos")
    # A fifth of the answers fail and one in twenty times out: an identify (two requests) fails an
    # attempt about 44 % of the time, so the suite's eight retries ran out for one call of the 400
    # identifies and groups in about one run of eight. This test is about kills and restarts, not
    # running out of retries (tests/forwarding covers that): sixteen short retries.
    cluster.configure(RELAY_RETRY_SCHEDULE=",".join(["1s", "1s", "2s", "2s"] + ["3s"] * 12))
    web = Web(relay_env(DJANGO_ALLOWED_HOSTS="127.0.0.1"), tmp_path / "gunicorn.log")
    sandbox.configure(error_rate=ERROR_RATE, slow_rate=0.05, slow_ms=3000, rate_limit=400, rate_limit_window=2)
    chaos = Chaos(cluster, sandbox, web)
    settings.RELAY_REENQUEUE_AFTER = 20
    started = time.monotonic()
    chaos.start()
    try:
        failures = send(web.url, key)
        assert failures == [], failures[:3]
        assert Call.objects.count() == USERS * (TRACKS + 2)

        # The schedule sweeps about once a minute; here the test sweeps every 2 s to stay short.
        def drained():
            sweeper.sweep()
            return Delivery.objects.filter(state=State.DELIVERED).count() == USERS * (TRACKS + 2)

        try:
            wait_until(drained, 480, interval=2, message="every call delivered")
        except AssertionError:
            stuck = Delivery.objects.exclude(state=State.DELIVERED)
            summary = list(stuck.values_list("state", "error_cause").annotate(n=Count("pk")))
            raise AssertionError(
                f"not delivered: {summary}; e.g. {list(stuck.values('pk', 'last_error')[:5])}"
            ) from None
    finally:
        chaos.stop_event.set()
        chaos.join(timeout=60)
        web.stop()
    drain_seconds = time.monotonic() - started

    state = sandbox.state
    assert sorted(c["external_id"] for c in state.contacts) == sorted(f"chaos-{u}" for u in range(USERS))
    events = state.events
    assert len(events) == USERS * TRACKS
    assert len({(e["user_id"], e["event_name"], e["created_at"]) for e in events}) == len(events)
    contact_ids = {c["id"] for c in state.contacts}
    assert {a["contact_id"] for a in state.attachments} == contact_ids
    assert len(state.companies) == 20
    retried = Delivery.objects.filter(attempt_count__gt=1).count()
    assert retried > 0 and Attempt.objects.filter(outcome="retry").exists()  # the log shows the retries
    totals = Delivery.objects.aggregate(attempts=Sum("attempt_count"), calls=Count("pk"))
    with capsys.disabled():
        print(
            f"\nchaos: {totals['calls']} calls, {totals['attempts']} attempts, {retried} deliveries retried, "
            f"{sandbox.counters['requests']} requests to Intercom "
            f"({sandbox.counters.get('status.429', 0)} answered 429), "
            f"{chaos.kills} workers killed, {chaos.bursts} bursts of 429, {chaos.web_restarts} web restarts, "
            f"{chaos.redis_restarts} Redis restarts; drained in {drain_seconds:.0f} s"
        )
