"""The sweeper never waits for a delivery a worker's transaction holds: on PostgreSQL a plain
UPDATE of the lost deliveries could wait for a row a worker locked while that worker waited for
one the UPDATE had locked, a deadlock (seen in the chaos test). It skips them; the next sweep
takes what is still lost."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from forwarding.delivery import queue, sweeper
from forwarding.models import Delivery
from tests.forwarding.locks import Holder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enqueued(monkeypatch):
    tasks = []
    monkeypatch.setattr(queue, "enqueue_tasks", lambda found: tasks.extend(list(task) for task in found) or True)
    return tasks


def lost(store, *users):
    pks = store(*({"type": "track", "userId": user, "event": "Signed Up"} for user in users))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(pk__in=pks).update(enqueued_at=None, next_attempt_at=an_hour_ago)
    return pks


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL (DATABASE_URL)")
def test_the_sweeper_skips_a_delivery_another_transaction_holds_and_takes_it_later(store, enqueued):
    held, free = lost(store, "ann", "bob")
    holder = Holder(held)
    holder.start()
    assert holder.locked.wait(10)
    try:
        started = time.monotonic()
        assert sweeper.sweep()["enqueued"] == 1
        assert time.monotonic() - started < 5  # not waiting for the lock
        assert enqueued == [[free]]
        assert Delivery.objects.get(pk=held).enqueued_at is None
    finally:
        holder.release.set()
        holder.join(10)
    assert sweeper.sweep()["enqueued"] == 1
    assert enqueued == [[free], [held]]


def test_the_sweeper_marks_and_enqueues_every_lost_delivery(store, enqueued):
    pks = lost(store, "ann", "bob", "cy")
    assert sweeper.sweep()["enqueued"] == 3
    assert sorted(pk for task in enqueued for pk in task) == sorted(pks)
    assert Delivery.objects.filter(pk__in=pks, enqueued_at=None).count() == 0
