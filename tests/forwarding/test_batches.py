"""Deliveries travel in batches: one task takes up to fifty, in the order received, and hands on
what it could not finish (its budget, or a user's next call it found blocked)."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding.delivery import loop, queue, sweeper
from forwarding.delivery.buffer import OutcomeBuffer
from forwarding.models import Attempt, Delivery, EventName, State

pytestmark = pytest.mark.django_db


def test_a_task_takes_at_most_fifty_deliveries_and_each_worker_gets_one(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    assert queue.batches([7]) == [[7]]
    assert queue.batches(list(range(10))) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    sizes = [len(batch) for batch in queue.batches(list(range(230)))]
    assert sizes == [50, 50, 50, 50, 30]
    assert [pk for batch in queue.batches(list(range(230))) for pk in batch] == list(range(230))


@pytest.fixture
def handed_on(monkeypatch):
    """The deliveries a task puts back on the queue (this test is the only worker)."""
    handed = []
    monkeypatch.setattr(queue, "enqueue_tasks", lambda tasks: handed.extend(list(task) for task in tasks) or True)
    return handed


def identify(user_id):
    return {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com"}}


def track(user_id, event):
    return {"type": "track", "userId": user_id, "event": event}


@pytest.fixture
def no_carrying_on(monkeypatch):
    """Tasks that hand on at once what they do not finish, as they do once CARRY_ON_SECONDS are over."""
    monkeypatch.setattr(loop, "CARRY_ON_SECONDS", 0)


def test_one_task_delivers_its_batch_and_hands_on_what_its_budget_leaves(store, sandbox, handed_on, no_carrying_on):
    pks = store(identify("ann"), identify("bob"), track("ann", "First"), track("bob", "Other"), track("ann", "Second"))
    loop.deliver_many(pks[:3])
    loop.deliver_many(pks[3:], budget=0)  # the first is always tried; the budget is spent

    states = dict(Delivery.objects.values_list("pk", "state"))
    assert [states[pk] for pk in pks] == [State.DELIVERED] * 4 + [State.PENDING]
    assert handed_on == [[pks[4]]]

    loop.deliver_many(handed_on[0])
    assert [event["event_name"] for event in sandbox.state.events_for("ann")] == ["First", "Second"]
    assert Delivery.objects.filter(state=State.DELIVERED).count() == 5


def test_a_call_found_blocked_is_handed_on_when_the_users_older_call_is_delivered(
    store, sandbox, handed_on, no_carrying_on
):
    store(identify("cat"))
    first, second = store(track("cat", "Older"), track("cat", "Newer"))
    loop.deliver_many(Delivery.objects.filter(state=State.PENDING, call__type="identify").values_list("pk", flat=True))

    loop.deliver_many([second])  # its task comes first: it waits for the older call
    assert Delivery.objects.get(pk=second).state == State.PENDING
    assert handed_on == []

    loop.deliver_many([first])
    assert handed_on == [[second]]
    loop.deliver_many(handed_on[0])
    assert [event["event_name"] for event in sandbox.state.events_for("cat")] == ["Older", "Newer"]


def test_a_task_asks_the_database_a_few_statements_whatever_its_size(store, sandbox, handed_on):
    def task_of(size, offset):
        users = [f"user-{offset + n}" for n in range(size)]
        loop.deliver_many(store(*(identify(user) for user in users)))
        pks = store(*(track(user, "Bought") for user in users))
        with CaptureQueriesContext(connection) as queries:
            loop.deliver_many(pks)
        return pks, len(queries)

    small, small_count = task_of(10, 0)
    large, large_count = task_of(30, 100)
    assert large_count - small_count < 10  # twenty more deliveries, well under one statement each

    # Each delivered call is recorded in full all the same: its attempt and its exchange.
    for pk in small + large:
        delivery = Delivery.objects.get(pk=pk)
        assert (delivery.state, delivery.attempt_count, delivery.last_status) == (State.DELIVERED, 1, 202)
        (attempt,) = delivery.attempts.all()
        assert (attempt.outcome, attempt.status) == ("delivered", 202)
        assert attempt.started_at <= delivery.delivered_at
        assert [(e.method, e.path, e.status) for e in attempt.exchanges.all()] == [("POST", "/events", 202)]
    assert EventName.objects.get(key="bought").delivered_count == 40


def test_a_users_later_call_in_the_same_task_follows_the_earlier_one(store, sandbox, handed_on):
    pks = store(identify("dan"), track("dan", "One"), track("dan", "Two"), identify("eve"), track("eve", "Three"))
    loop.deliver_many(pks)
    assert set(Delivery.objects.values_list("state", flat=True)) == {State.DELIVERED}
    assert [event["event_name"] for event in sandbox.state.events_for("dan")] == ["One", "Two"]
    assert handed_on == []


def test_calls_a_worker_sent_but_did_not_record_are_sent_again_and_not_duplicated(
    store, sandbox, monkeypatch, settings
):
    settings.RELAY_LEASE_SECONDS = 0.2
    store(identify("fay"))
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    pks = store(track("fay", "Paid"), track("fay", "Shipped"))

    def dies(journal):
        raise SystemExit("the worker is killed before it writes")

    monkeypatch.setattr(OutcomeBuffer, "flush", dies)
    with pytest.raises(SystemExit):
        loop.deliver_many(pks)
    states = dict(Delivery.objects.filter(pk__in=pks).values_list("pk", "state"))
    assert [states[pk] for pk in pks] == [State.DELIVERING, State.PENDING]  # the second waits for the first
    assert list(Attempt.objects.filter(delivery__in=pks).values_list("outcome", flat=True)) == [""]  # begun
    monkeypatch.undo()

    time.sleep(0.3)
    assert sweeper.sweep()["leases_expired"] == 1
    loop.deliver_many(pks)
    assert set(Delivery.objects.filter(pk__in=pks).values_list("state", flat=True)) == {State.DELIVERED}
    # Intercom collapsed the resent event: same user, name and created_at.
    assert [event["event_name"] for event in sandbox.state.events_for("fay")] == ["Paid", "Shipped"]


def test_a_blocked_users_next_calls_are_handed_on_together_in_one_task(store, sandbox, handed_on, no_carrying_on):
    store(identify("gus"))
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    first, second, third, fourth = store(*(track("gus", name) for name in ["A", "B", "C", "D"]))
    loop.deliver_many([second])  # its task ran ahead of the first's: held back, left with no task
    loop.deliver_many([first])
    assert handed_on == [[second, third, fourth]]  # not one task per call, chasing each other
    loop.deliver_many(handed_on[0])
    assert [event["event_name"] for event in sandbox.state.events_for("gus")] == ["A", "B", "C", "D"]


def test_groups_are_packed_into_tasks_without_being_split(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    assert queue.packed([[1, 2, 3], [4], [5, 6]]) == [[1, 2, 3], [4], [5, 6]]
    assert queue.packed([[n] for n in range(8)]) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_a_task_goes_on_with_its_users_next_calls_instead_of_queueing_them_behind_others(store, sandbox, handed_on):
    """A deep backlog: the user's calls sit in tasks queued long before, which each found theirs
    held back by the call before and let it go. The task that delivers the user's oldest goes on
    with those itself, KICK_AHEAD at a time, rather than hand them on to the queue's end."""
    store(identify("hal"), identify("ivy"))
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    names = [f"Step {n}" for n in range(2 * loop.KICK_AHEAD + 5)]
    hal = store(*(track("hal", name) for name in names))
    ivy = store(track("ivy", "Elsewhere"))
    for later in hal[1:]:
        loop.deliver_many([later])  # each queued task found its call held back: none is left with a task
    assert Delivery.objects.filter(pk__in=hal[1:], enqueued_at=None).count() == len(hal) - 1

    loop.deliver_many([hal[0]])

    assert [event["event_name"] for event in sandbox.state.events_for("hal")] == names  # in order, once each
    assert set(Delivery.objects.filter(pk__in=hal).values_list("state", flat=True)) == {State.DELIVERED}
    assert handed_on == []  # nothing of hal's left for the queue
    assert Delivery.objects.get(pk=ivy[0]).state == State.PENDING  # another user's call keeps its own task


def test_a_task_stops_carrying_on_after_its_time_and_hands_the_rest_on(store, sandbox, handed_on, monkeypatch):
    store(identify("jon"))
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    pks = store(*(track("jon", f"Step {n}") for n in range(4)))
    for later in pks[1:]:
        loop.deliver_many([later])
    clock = iter(range(0, 1000, 5))  # every look at the clock is five seconds on
    monkeypatch.setattr(loop.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(loop, "CARRY_ON_SECONDS", 1)

    loop.deliver_many([pks[0]], budget=100)

    assert Delivery.objects.get(pk=pks[0]).state == State.DELIVERED
    assert handed_on == [pks[1:]]  # its time was over: handed on together, as before


def test_a_task_leaves_a_users_next_call_to_the_task_still_queued_for_it(store, sandbox, handed_on):
    store(identify("kim"))
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    first, second = store(track("kim", "One"), track("kim", "Two"))
    Delivery.objects.filter(pk=second).update(enqueued_at=timezone.now())  # its task is on the queue

    loop.deliver_many([first])

    assert Delivery.objects.get(pk=first).state == State.DELIVERED
    assert Delivery.objects.get(pk=second).state == State.PENDING  # its own task delivers it
    assert handed_on == []
    loop.deliver_many([second])
    assert [event["event_name"] for event in sandbox.state.events_for("kim")] == ["One", "Two"]
