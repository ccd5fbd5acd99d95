"""Scale-out on PostgreSQL + Redis: two qcluster processes, and a Redis that loses its tasks."""

import os
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection
from segment.analytics import Client

from forwarding.delivery import sweeper
from forwarding.models import Attempt, Delivery, Outcome, State
from tests.processes import Cluster, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL") or "postgres" not in os.environ.get("DATABASE_URL", ""),
        reason="the scale-out path: PostgreSQL (DATABASE_URL) with the Redis broker (REDIS_URL)",
    ),
]
USERS = 200
TRACKS_PER_USER = 9


@pytest.fixture
def second_cluster(cluster, tmp_path):
    """Another qcluster on the same database and broker, as on a second machine."""
    cluster.ensure_running()
    other = Cluster(cluster.env, tmp_path / "qcluster-2.log")
    yield other
    other.stop()


def send(live_server, key, users=USERS, tracks=TRACKS_PER_USER):
    failures = []
    client = Client(key, host=live_server.url, upload_size=100, on_error=lambda e, batch: failures.append(e))
    for user in range(users):
        client.identify(f"user-{user}", {"email": f"user-{user}@example.com"})
    for n in range(tracks):
        for user in range(users):
            client.track(
                f"user-{user}", f"Step {n}", {"n": n}, timestamp=datetime(2026, 3, 1, 10, n, user % 60, tzinfo=UTC)
            )
    client.flush()
    assert failures == []
    return users * (tracks + 1)


def test_it_delivers_2000_calls_exactly_once_in_order_with_two_workers(live_server, source, sandbox, second_cluster):
    assert connection.vendor == "postgresql" and "redis" in settings.Q_CLUSTER
    sandbox.configure(rate_limit=200, rate_limit_window=2)
    total = send(live_server, source[1])

    delivered = lambda: Delivery.objects.filter(state=State.DELIVERED).count()  # noqa: E731
    wait_until(lambda: delivered() == total, 240, interval=1, message=f"{total} deliveries (at {delivered()})")

    # Exactly once, as Intercom sees it: every event stored once, no delivery sent twice.
    events = sandbox.state.events
    assert len(events) == USERS * TRACKS_PER_USER
    assert len({(e["user_id"], e["event_name"], e["created_at"]) for e in events}) == len(events)
    assert len(sandbox.state.contacts) == USERS
    assert Attempt.objects.filter(outcome=Outcome.DELIVERED).count() == total
    # Order per user: each user's events reached Intercom in the order they were sent.
    steps = defaultdict(list)
    for event in events:
        steps[event["user_id"]].append(int(event["event_name"].split()[-1]))
    assert all(seen == sorted(seen) for seen in steps.values())
    # The limit, respected in sum by both workers: Intercom rarely had to say 429.
    requests = sandbox.counters["requests"]
    assert sandbox.counters.get("status.429", 0) < 0.01 * requests


def test_it_delivers_what_a_restarted_redis_lost(live_server, source, sandbox, cluster, settings):
    import redis

    cluster.kill()  # no worker: the tasks sit in Redis
    total = send(live_server, source[1], users=5, tracks=2)
    queue = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert queue.dbsize() > 0
    queue.flushdb()  # what a Redis restart without persistence does
    cluster.start()

    settings.RELAY_REENQUEUE_AFTER = 0
    wait_until(
        lambda: sweeper.sweep()["enqueued"] == 0 and Delivery.objects.filter(state=State.DELIVERED).count() == total,
        60,
        interval=1,
        message="the sweeper to re-enqueue the lost tasks",
    )
    assert len(sandbox.state.events) == 10
