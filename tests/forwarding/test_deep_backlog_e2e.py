"""A deep backlog: many calls of each user queued before the workers start (an outage, a
restart), with the real Segment client, a real qcluster of several workers and the sandbox. Tasks
go on with their users' next calls (`loop.carry_on`) while the tasks queued for those calls find
them delivered: every call reaches Intercom once, and each user's in the order sent."""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.conf import settings
from segment.analytics import Client

from forwarding.models import Attempt, Delivery, Outcome, State
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
USERS = 12
TRACKS_PER_USER = 30


def test_a_deep_backlog_reaches_intercom_once_each_and_in_each_users_order(live_server, source, sandbox, cluster):
    assert settings.Q_CLUSTER["workers"] > 1
    cluster.kill()  # the calls pile up with no worker
    failures = []
    client = Client(source[1], host=live_server.url, upload_size=100, on_error=lambda e, batch: failures.append(e))
    for user in range(USERS):
        client.identify(f"user-{user}", {"email": f"user-{user}@example.com"})
    for n in range(TRACKS_PER_USER):
        for user in range(USERS):  # round robin: each queued task holds one call of many users
            client.track(f"user-{user}", f"Step {n}", {"n": n}, timestamp=datetime(2026, 3, 1, 10, n, user, tzinfo=UTC))
    client.flush()
    assert failures == []
    total = USERS * (TRACKS_PER_USER + 1)
    assert Delivery.objects.filter(state=State.PENDING).count() == total
    cluster.start()

    delivered = lambda: Delivery.objects.filter(state=State.DELIVERED).count()  # noqa: E731
    wait_until(lambda: delivered() == total, 120, interval=0.5, message=f"{total} deliveries (at {delivered()})")

    events = sandbox.state.events
    assert len(events) == USERS * TRACKS_PER_USER
    assert len({(e["user_id"], e["event_name"]) for e in events}) == len(events)  # none sent twice
    assert Attempt.objects.filter(outcome=Outcome.DELIVERED).count() == total  # no delivery tried twice
    steps = defaultdict(list)
    for event in events:
        steps[event["user_id"]].append(int(event["event_name"].split()[-1]))
    assert steps == {f"user-{user}": list(range(TRACKS_PER_USER)) for user in range(USERS)}
