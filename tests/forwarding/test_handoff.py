"""A user's next call is handed on when an older one is done, also when the older one's worker
finished while this call's own task was letting go of it (a race that stalled deep queues until
the sweeper came)."""

import pytest
from django.utils import timezone

from forwarding.delivery import loop, queue
from forwarding.models import Delivery, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    tasks = []
    monkeypatch.setattr(queue, "enqueue_tasks", lambda found: tasks.extend(found) or True)
    return tasks


def two_calls(store):
    older, newer = store(
        {"type": "track", "userId": "ann", "event": "First", "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "track", "userId": "ann", "event": "Second", "timestamp": "2026-01-01T00:00:01Z"},
    )
    Delivery.objects.filter(pk=newer).update(enqueued_at=timezone.now())  # its task is running
    return older, newer


def test_a_call_let_go_after_its_older_call_finished_is_handed_on(store, enqueued):
    older, newer = two_calls(store)
    Delivery.objects.filter(pk=older).update(state=State.DELIVERED)  # finished before the let-go

    freed = loop.held_back([newer])
    loop.kick_next(freed)

    assert freed == {"ann"}
    assert Delivery.objects.get(pk=newer).enqueued_at is not None
    assert [list(task) for task in enqueued] == [[newer]]


def test_a_call_still_held_back_waits_for_its_older_calls_worker(store, enqueued):
    older, newer = two_calls(store)
    Delivery.objects.filter(pk=older).update(state=State.DELIVERING)  # still in flight

    assert loop.held_back([newer]) == set()
    assert Delivery.objects.get(pk=newer).enqueued_at is None  # the older call's worker hands it on
