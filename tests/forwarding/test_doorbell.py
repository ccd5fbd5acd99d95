"""The ORM broker's doorbell: a commit of tasks wakes the pusher at once; nothing else does."""

import time

import pytest
from django.db import transaction
from segment.analytics import Client

from forwarding.delivery import doorbell, queue
from forwarding.models import Delivery, State
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bells():
    path = doorbell.directory()
    if path is None or not queue.in_the_database():
        pytest.skip("the doorbell is SQLite's, with the ORM broker")
    made = []

    def bell():
        made.append(doorbell.Bell(path / f"test-{len(made)}-{time.monotonic_ns()}{doorbell.SUFFIX}"))
        return made[-1]

    yield bell
    for each in made:
        each.close()


def test_a_bell_wakes_when_rung_and_only_then(bells):
    first, second = bells(), bells()
    assert first.wait(0.05) is False
    assert doorbell.ring() >= 2
    assert first.wait(5) is True and second.wait(5) is True
    assert first.wait(0.05) is False  # the ring was taken


def test_a_bell_whose_pusher_is_gone_is_taken_down_by_the_next_ring(bells):
    gone = bells()
    gone.socket.close()  # its process died: the file stays
    assert gone.path.exists()
    doorbell.ring()
    assert not gone.path.exists()


def test_tasks_ring_when_their_transaction_commits_not_before(bells):
    bell = bells()
    with transaction.atomic():
        queue.enqueue_tasks([[1]])
        assert bell.wait(0.1) is False  # not visible yet: a pusher woken now would find nothing
    assert bell.wait(5) is True


@pytest.mark.slow
def test_a_call_is_delivered_long_before_the_pushers_poll(bells, cluster, live_server, source, sandbox):
    cluster.configure(RELAY_TEST_QUEUE_POLL=60)
    directory = doorbell.directory()
    # The new pusher hangs its bell on its first wait for tasks.
    wait_until(lambda: any(p.name.endswith(doorbell.SUFFIX) for p in directory.iterdir()), 30, message="a bell")
    _, key = source
    client = Client(key, host=live_server.url, sync_mode=True, max_retries=0)
    started = time.monotonic()
    client.identify("doorbell-user", {"email": "doorbell@example.com"})
    wait_until(lambda: Delivery.objects.filter(state=State.DELIVERED).exists(), 30, interval=0.05, message="delivery")
    # Polling every 60 s it would have waited for the next poll; rung, it takes the task at once.
    assert time.monotonic() - started < 20
    assert sandbox.state.contact_by_external_id("doorbell-user")["email"] == "doorbell@example.com"
