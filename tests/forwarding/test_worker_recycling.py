"""django-q2 replaces each worker process after `recycle` tasks (RELAY_WORKER_RECYCLE). That worker
finished its tasks: its replacement's start must not make the sweeper take the tasks the cluster
holds for lost and enqueue their calls again. A worker that dies still counts."""

import os
import signal
import time

import pytest
from django.conf import settings
from django_q.conf import Conf

from forwarding.delivery import sweeper, worker_starts
from forwarding.models import Attempt, Delivery, Outcome, State, WorkerStart
from tests.forwarding.ingest import post_batch
from tests.processes import children, spawned_workers, wait_until

USERS = 60


@pytest.fixture
def markers(tmp_path, monkeypatch):
    monkeypatch.setattr(worker_starts, "MARKERS", tmp_path)
    monkeypatch.setattr(worker_starts, "_tasks_done", 0)
    monkeypatch.setattr(Conf, "RECYCLE", 3)
    return tmp_path


def spy(function, pks):
    """`function` (of pks, now), keeping the pks it was given."""
    return lambda given, now: pks.extend(given) or function(given, now)


def recorded_start():
    return WorkerStart.objects.values_list("started_at", flat=True).first()


def test_a_recycled_workers_replacement_records_no_start(transactional_db, markers):
    worker_starts.worker_started()  # the cluster starts
    started = recorded_start()

    for _ in range(3):  # django-q2 recycles the worker after its third task...
        worker_starts.task_done()
    worker_starts.worker_started()  # ...and its sentinel starts another in its place
    assert recorded_start() == started
    assert list(markers.iterdir()) == []  # the replacement took the marker

    worker_starts.worker_started()  # a worker that died (killed, out of memory) is replaced
    assert recorded_start() > started


def test_a_marker_its_sentinel_never_took_is_not_taken_later(transactional_db, markers):
    for _ in range(3):
        worker_starts.task_done()
    [marker] = markers.iterdir()
    old = time.time() - worker_starts.MARKER_FRESH_SECONDS - 1
    os.utime(marker, (old, old))  # the sentinel died before replacing the worker
    other_cluster = markers / f"{os.getppid() + 1}-{os.getpid()}"  # another sentinel's worker, just recycled
    other_cluster.touch()

    worker_starts.worker_started()
    assert recorded_start() is not None
    assert list(markers.iterdir()) == [other_cluster]


@pytest.mark.slow
def test_workers_recycled_under_a_backlog_send_no_call_again(
    transactional_db, client, source, sandbox, cluster, monkeypatch
):
    """A real cluster whose workers are recycled every three tasks, with tasks in their hands the
    sweeper (every second in this process) looks at all along: it enqueues none of the calls
    again, and every call is delivered once. A worker killed afterwards still counts as a start."""
    cluster.configure(RELAY_WORKER_RECYCLE=3)
    [sentinel] = wait_until(lambda: children(cluster.process.pid), 30, message="the cluster's sentinel")
    # The workers, then the monitor and the pusher; each worker records its start as it comes up.
    processes = settings.Q_CLUSTER["workers"] + 2
    wait_until(lambda: len(children(sentinel)) == processes, 30, message="the workers")
    first = set(spawned_workers(cluster))
    monitor_and_pusher = set(children(sentinel)) - first
    time.sleep(1)
    started = recorded_start()
    enqueued_again = []  # by the sweeper
    monkeypatch.setattr(sweeper, "mark_enqueued", spy(sweeper.mark_enqueued, enqueued_again))

    # One call per user in flight at a time, each in a task of its own: no call waits for its
    # user's identify or behind the one before, so none is due again and the sweeper's to send.
    delivered = lambda: Delivery.objects.filter(state=State.DELIVERED).count()  # noqa: E731
    phases = [{"type": "identify", "traits": {"plan": "pro"}}, {"type": "track", "event": "Viewed"}]
    for calls, message in enumerate(phases, 1):
        for n in range(USERS):
            post_batch(client, source[1], [{**message, "userId": f"user-{n}"}])
        wait_until(lambda: delivered() == USERS * calls, 60, message=f"{USERS * calls} calls delivered")  # noqa: B023
    time.sleep(2)  # two more sweeps

    assert first.isdisjoint(children(sentinel))  # every worker was recycled, and replaced
    assert enqueued_again == []
    assert recorded_start() == started
    assert Attempt.objects.filter(outcome=Outcome.DELIVERED).count() == USERS * 2

    worker = next(pid for pid in children(sentinel) if pid not in monitor_and_pusher)
    os.kill(worker, signal.SIGKILL)  # a worker dies: its replacement's start counts
    wait_until(lambda: recorded_start() > started, 10, message="the replacement's start recorded")
