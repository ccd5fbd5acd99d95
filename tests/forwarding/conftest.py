"""End-to-end fixtures: the Intercom sandbox over real HTTP and a real qcluster process."""

import pytest

from forwarding import intercom
from forwarding.sandbox.testing import running_sandbox
from tests.processes import Cluster, relay_env

TOKEN = "e2e-intercom-token"
# What the worker process runs with: short waits so retries happen within a test.
WORKER_SETTINGS = {
    "RELAY_RETRY_SCHEDULE": "1s,1s,2s",
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
def cluster(django_db_setup, django_db_blocker, sandbox_server, tmp_path_factory):
    """A real `manage.py qcluster` on the test database, forwarding to the sandbox."""
    with django_db_blocker.unblock():
        env = relay_env(
            INTERCOM_API_BASE=sandbox_server.url,
            INTERCOM_ACCESS_TOKEN=TOKEN,
            **WORKER_SETTINGS,
        )
    worker = Cluster(env, tmp_path_factory.mktemp("qcluster") / "qcluster.log")
    yield worker
    worker.stop()
