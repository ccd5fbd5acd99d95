"""The watchdog's rules (tests/chaos/test_watchdog.py kills a real cluster's workers) and the
sweeper's single run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from forwarding.delivery import sweeper, watchdog
from forwarding.models import ClusterBeat, Delivery, SweepRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue(make_call, settings):
    settings.RELAY_STALL_SECONDS = 60
    call = make_call(state="pending", received_at=timezone.now() - timedelta(minutes=5))
    Delivery.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    return call


def test_worker_health_is_ok_with_nothing_overdue(client, make_call):
    make_call(state="pending")
    assert client.get("/health/worker").json() == {"status": "ok"}


def test_worker_health_fails_when_deliveries_are_overdue_and_no_cluster_works(client, overdue):
    response = client.get("/health/worker")
    assert response.status_code == 503
    assert response.json()["status"] == "stalled"

    ClusterBeat.objects.create(host="worker-a", beat_at=timezone.now() - timedelta(minutes=3))
    assert client.get("/health/worker").status_code == 503
    ClusterBeat.objects.create(host="worker-b", beat_at=timezone.now())
    assert client.get("/health/worker").status_code == 200  # another cluster works the backlog


def test_the_watchdog_restarts_a_cluster_that_finished_no_task_while_deliveries_are_overdue(overdue):
    restarts = []
    dog = watchdog.Watchdog(restart=lambda: restarts.append(True))
    ClusterBeat.objects.create(host=watchdog.host(), beat_at=timezone.now())
    assert not dog.check() and restarts == []

    ClusterBeat.objects.filter(host=watchdog.host()).update(beat_at=timezone.now() - timedelta(minutes=2))
    assert dog.check() and restarts == [True]
    beat = ClusterBeat.objects.get(host=watchdog.host())
    assert (beat.restarts, beat.stalled_since is not None) == (1, True)


def test_a_beat_clears_the_stall(overdue, monkeypatch):
    ClusterBeat.objects.create(host=watchdog.host(), beat_at=timezone.now(), stalled_since=timezone.now())
    monkeypatch.setattr(watchdog, "_beaten_at", float("-inf"))
    watchdog.beat()
    assert ClusterBeat.objects.get().stalled_since is None


def test_one_sweep_runs_at_a_time_and_one_queued_behind_it_does_nothing(monkeypatch):
    assert sweeper.start_sweep(50)
    assert not sweeper.start_sweep(50)  # running
    SweepRun.objects.update(lease_until=timezone.now() - timedelta(seconds=2))
    assert not sweeper.start_sweep(50)  # queued behind the one that has just ended
    SweepRun.objects.update(lease_until=timezone.now() - timedelta(seconds=10))
    assert sweeper.start_sweep(50)


def test_a_skipped_sweep_returns_at_once(monkeypatch):
    assert sweeper.start_sweep(50)
    assert sweeper.sweep_for(50, 1) == {"skipped": "a sweep runs, or has just run"}
