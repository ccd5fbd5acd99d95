"""A cluster whose workers are killed with SIGKILL stalls (django-q2's task queue is left locked
by the dead worker): its watchdog notices and restarts it, and every call is delivered once."""

import base64
import json
import os
import signal
import time

import pytest
import requests

from forwarding.models import ClusterBeat, Delivery, State
from tests.processes import children, spawned_workers, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
STALL_SECONDS = 8
USERS = 40


def post(url, key, messages):
    auth = base64.b64encode(f"{key}:".encode()).decode()
    response = requests.post(
        f"{url}/v1/batch",
        data=json.dumps({"batch": messages}),
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def calls(user):
    # A second apart: Intercom keeps one event per user, name and second.
    at = [f"2026-12-01T10:00:0{n}Z" for n in range(3)]
    return [
        {"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"}},
        *[{"type": "track", "userId": user, "event": "Viewed", "timestamp": at[n]} for n in range(3)],
    ]


def test_killed_workers_stall_the_cluster_and_its_watchdog_restarts_it(live_server, source, cluster, sandbox):
    cluster.configure(RELAY_STALL_SECONDS=STALL_SECONDS)
    wait_until(lambda: len(children(cluster.process.pid)) == 1 and len(spawned_workers(cluster)) == 3, 30)
    time.sleep(2)  # the workers wait on the task queue, one of them holding its lock
    started_at = ClusterBeat.objects.values_list("beat_at", flat=True).first()
    main_pid = cluster.process.pid

    for pid in spawned_workers(cluster):
        os.kill(pid, signal.SIGKILL)
    post(live_server.url, source[1], [m for n in range(USERS) for m in calls(f"user-{n}")])
    health = requests.get(f"{live_server.url}/health/worker", timeout=5)

    wait_until(
        lambda: Delivery.objects.filter(state=State.DELIVERED).count() == USERS * 4,
        60,
        message="every call delivered after the watchdog restarted the cluster",
    )
    beat = ClusterBeat.objects.get()
    assert beat.restarts >= 1 and beat.restarted_at > started_at
    assert cluster.process.pid == main_pid and cluster.running  # restarted in place
    assert "restarting the cluster" in cluster.output()
    # Delivered once as Intercom sees it: one event per call, one contact per user.
    assert len(sandbox.state.events) == USERS * 3
    assert len(sandbox.state.contacts) == USERS
    assert requests.get(f"{live_server.url}/health/worker", timeout=5).status_code == 200
    assert health.status_code in (200, 503)  # overdue only after the stall time
    cluster.configure()
