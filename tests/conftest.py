"""Shared fixtures: data built in code, and no network outside loopback."""

import socket
import threading

import pytest

from forwarding import intercom
from forwarding.delivery import sweeper
from forwarding.models import Source
from forwarding.sandbox.testing import running_sandbox
from tests import lock_waits, processes
from tests.processes import Cluster, kill_stale_clusters, relay_env

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        raise RuntimeError(f"tests must not reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test stopped by PostgreSQL's lock timeout reports the sessions that held the lock."""
    outcome = yield
    if call.excinfo is not None and lock_waits.stopped_by_lock_timeout(call.excinfo.value):
        outcome.get_result().sections.append(("PostgreSQL sessions at the lock timeout", lock_waits.sessions()))


@pytest.fixture
def source(db):
    """A source and its write key: (source, key)."""
    return Source.create_with_key("Website")


@pytest.fixture
def make_call(source):
    """make_call(type="track", user_id="u1", event="Signed Up", state="delivered", received_at=..., **payload)
    stores a call with its delivery, as ingestion and the engine would leave it."""
    from django.utils import timezone

    from forwarding.models import Call, Delivery

    counter = iter(range(1, 10**9))

    def make(type="track", user_id="u1", event="Signed Up", state="delivered", received_at=None, **payload):
        n = next(counter)
        received_at = received_at or timezone.now()
        message = {"type": type, "userId": user_id, "messageId": f"made-{n}", "timestamp": received_at.isoformat()}
        if type == "track":
            message["event"] = event
        message.update(payload)
        call = Call.objects.create(
            source=source[0],
            message_id=f"made-{n}",
            type=type,
            user_id=user_id,
            event=event if type == "track" else "",
            timestamp=received_at,
            received_at=received_at,
            payload=message,
        )
        Delivery.objects.create(call=call, user_id=user_id, state=state, created_at=received_at)
        return call

    return make


# -- the Intercom sandbox and a real worker, shared by every end-to-end test -------------------

TOKEN = "e2e-intercom-token"
# What the worker process runs with: short waits so retries happen within a test.
WORKER_SETTINGS = {
    "RELAY_RETRY_SCHEDULE": "1s,1s,2s,2s,3s,3s,5s,5s",
    "RELAY_AUTH_RETRY_SECONDS": "2s",
    "RELAY_LEASE_SECONDS": "15s",
    "INTERCOM_READ_TIMEOUT": "2",
    "INTERCOM_CONNECT_TIMEOUT": "2",
}


@pytest.fixture(scope="session")
def sandbox_server():
    with running_sandbox(token=TOKEN) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server, settings):
    """A fresh sandbox workspace; the relay (this process and the worker) talks to it.
    Every request the relay sent must be one the OpenAPI description allows."""
    sandbox_server.reset(config=True)
    settings.INTERCOM_API_BASE = sandbox_server.url
    settings.INTERCOM_ACCESS_TOKEN = TOKEN
    intercom.reset_client()
    yield sandbox_server
    intercom.reset_client()
    assert sandbox_server.violations == []
    assert sandbox_server.internal_errors == []


@pytest.fixture(scope="session")
def cluster_process(django_db_setup, django_db_blocker, sandbox_server, tmp_path_factory):
    """The one `manage.py qcluster` of the test run, on the test database, forwarding to the sandbox."""
    kill_stale_clusters()
    with django_db_blocker.unblock():
        env = relay_env(INTERCOM_API_BASE=sandbox_server.url, INTERCOM_ACCESS_TOKEN=TOKEN, **WORKER_SETTINGS)
    worker = Cluster(env, tmp_path_factory.mktemp("qcluster") / "qcluster.log")
    yield worker
    worker.stop()


@pytest.fixture
def cluster(cluster_process):
    """The worker, running with the default test settings; `cluster.configure(NAME=value)` changes
    them for one test (restarting it). While the test runs, this process sweeps every second: the
    worker's own sweeper schedule starts only about once a minute."""
    cluster_process.configure()
    sweeper = Sweeper()
    sweeper.start()
    yield cluster_process
    sweeper.stop()


class Sweeper(threading.Thread):
    """sweeper.sweep() every second in a thread of the test process."""

    def __init__(self, interval=1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self):
        from django.db import connection

        try:
            while not self.stopped.wait(self.interval):
                sweeper.sweep()
        finally:
            connection.close()

    def stop(self):
        self.stopped.set()
        self.join(timeout=30)


@pytest.fixture(autouse=True)
def _no_stray_worker(request):
    """A test that writes committed data without asking for the worker must not have it pick up
    that data: it is stopped for such tests (and started again by the next test that wants it)."""
    names = request.fixturenames
    if "cluster" not in names and ("transactional_db" in names or "live_server" in names):
        for worker in processes.CLUSTERS:
            if worker.running:
                worker.stop(close_log=False)
