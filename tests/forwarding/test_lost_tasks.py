"""The sweeper enqueues again only the calls whose task is lost: a task a worker took and died
with. Tasks still waiting in the queue (queued before the workers started, or behind a deep
backlog) are not lost, whichever broker holds them (the ORM broker on SQLite, Redis on
PostgreSQL): enqueuing them again made the workers go through duplicates."""

import pytest
from django.utils import timezone
from django_q.signing import SignedPackage

from forwarding.delivery import queue, sweeper, worker_starts
from forwarding.models import Delivery
from tests.forwarding.ingest import post_batch


@pytest.fixture
def broker(transactional_db):
    """The run's broker, empty, and no worker taking from it (see conftest's _no_stray_worker)."""
    broker = queue.queue_broker()
    broker.purge_queue()  # no tasks of earlier tests (Redis outlives the test database)
    yield broker
    broker.purge_queue()


def oldest_per_user():
    """Each user's oldest delivery: the one the sweeper enqueues again when its task is lost."""
    oldest = {}
    for pk, user_id in Delivery.objects.order_by("created_at", "pk").values_list("pk", "user_id"):
        oldest.setdefault(user_id, pk)
    return oldest


def store(client, key, users):
    """Two calls per user; with fewer calls than workers, each call is a task of its own."""
    for user in users:
        post_batch(client, key, [{"type": "track", "userId": user, "event": f"Step {n}"} for n in (1, 2)])


def test_calls_queued_before_the_workers_started_are_not_enqueued_again(client, source, broker, settings):
    store(client, source[1], ["ann", "bob", "cy"])
    worker_starts.worker_started()  # the workers start after the calls were queued

    assert sweeper.sweep()["enqueued"] == 0
    # Long after too: a deep backlog's tasks wait longer than RELAY_REENQUEUE_AFTER.
    settings.RELAY_REENQUEUE_AFTER = 0
    assert sweeper.sweep()["enqueued"] == 0
    assert broker.queue_size() == 6


def test_a_task_taken_by_a_worker_that_died_is_enqueued_again(client, source, broker):
    store(client, source[1], ["ann", "bob", "cy"])
    (_, payload), *_ = broker.dequeue()  # a worker takes one task...
    taken = SignedPackage.loads(payload)["args"][0]
    worker_starts.worker_started()  # ...and dies with it; the workers start again

    oldest = oldest_per_user()
    lost_user = Delivery.objects.get(pk=taken[0]).user_id
    assert sweeper.lost_tasks(timezone.now()) == [oldest[lost_user]]
    assert sweeper.sweep()["enqueued"] == 1
    assert broker.queue_size() == 6  # the five left waiting, and the lost one's again


def test_an_unreadable_queue_leaves_every_stale_call_to_the_sweeper(client, source, broker, monkeypatch):
    store(client, source[1], ["ann", "bob"])
    worker_starts.worker_started()
    # Nothing known of the queue (it is down, say): every call enqueued before the start may be lost.
    monkeypatch.setattr(queue, "queue_broker", lambda: None)
    assert sorted(sweeper.lost_tasks(timezone.now())) == sorted(oldest_per_user().values())
