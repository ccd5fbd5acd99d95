"""A red banner on every dashboard page while the workers are stalled (deliveries overdue and no
worker has finished a task for RELAY_STALL_SECONDS: forwarding.delivery.watchdog), at the cost of
one EXISTS on the delivery_due index while they are not."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forwarding.models import ClusterBeat, State
from tests.dashboard.conftest import plan_of

pytestmark = pytest.mark.django_db

PAGES = ["index", "delivery_log", "user_history", "event_names", "data_attributes", "forwarding_source_changelist"]


def banner(client, name="index"):
    """The stalled-workers banner's text, or None."""
    page = client.get(reverse(f"admin:{name}")).content.decode()
    if 'id="stalled-banner"' not in page:
        return None
    start = page.index('id="stalled-banner"')
    return " ".join(page[start : page.index("</div>", start)].split())


@pytest.fixture
def overdue(calls, settings):
    """A delivery due for longer than a cluster may take to start it."""
    settings.RELAY_STALL_SECONDS = 90
    long_ago = timezone.now() - timedelta(minutes=10)
    return calls(state=State.PENDING, next_attempt_at=long_ago)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_shows_it_while_no_worker_finishes_a_task(viewer_client, overdue, name):
    last_task = timezone.now() - timedelta(minutes=5)
    ClusterBeat.objects.create(host="worker-a", beat_at=last_task)
    text = banner(viewer_client, name)
    assert text is not None, name
    assert "Workers stalled:" in text
    assert f"no worker has finished a task since {last_task:%Y-%m-%d %H:%M} UTC" in text
    assert "worker-a" in text
    assert "the watchdog restarts a stalled cluster; if this stays, restart <code>manage.py qcluster</code>" in text


def test_it_says_when_the_last_of_several_workers_finished_a_task(viewer_client, overdue):
    now = timezone.now()
    ClusterBeat.objects.create(host="worker-a", beat_at=now - timedelta(minutes=9))
    ClusterBeat.objects.create(
        host="worker-b", beat_at=now - timedelta(minutes=4), stalled_since=now - timedelta(minutes=3)
    )
    text = banner(viewer_client)
    assert f"since {now - timedelta(minutes=3):%Y-%m-%d %H:%M} UTC" in text
    assert "worker-a, worker-b" in text


def test_it_says_when_no_worker_has_ever_reported(viewer_client, overdue):
    assert "no worker has finished a task yet (none has ever reported)" in banner(viewer_client)


def test_it_is_not_shown_while_nothing_is_overdue(viewer_client, calls, settings):
    settings.RELAY_STALL_SECONDS = 90
    calls(state=State.PENDING, next_attempt_at=timezone.now() - timedelta(seconds=30))  # due, not overdue
    calls(state=State.FAILED, next_attempt_at=timezone.now() - timedelta(hours=1))
    ClusterBeat.objects.create(host="worker-a", beat_at=timezone.now() - timedelta(hours=1))
    for name in PAGES:
        assert banner(viewer_client, name) is None, name


def test_it_is_not_shown_while_a_worker_finishes_tasks(viewer_client, overdue):
    ClusterBeat.objects.create(host="worker-a", beat_at=timezone.now() - timedelta(minutes=5))
    ClusterBeat.objects.create(host="worker-b", beat_at=timezone.now() - timedelta(seconds=10))
    assert banner(viewer_client) is None


def test_it_is_not_shown_on_the_login_page(client, overdue):
    assert 'id="stalled-banner"' not in client.get(reverse("admin:login")).content.decode()


def test_a_page_pays_one_query_for_it_while_the_workers_keep_up(viewer_client, calls):
    calls(state=State.DELIVERED)
    # Enough finished deliveries that the plan is the index's by cost, not a tie among the
    # one-page indexes of a near-empty table (PostgreSQL then picks any).
    call_command("seed_calls", "2000", "--seed", "3", stdout=io.StringIO())
    with CaptureQueriesContext(connection) as captured:
        assert viewer_client.get(reverse("admin:delivery_log")).status_code == 200
    overdue_checks = [q["sql"] for q in captured if '"next_attempt_at" <' in q["sql"]]
    assert len(overdue_checks) == 1
    assert "LIMIT 1" in overdue_checks[0]  # an EXISTS
    # An index that leads with the state: the check reads the pending deliveries, never the log.
    # (PostgreSQL may take delivery_state_log: with no pending row the two cost the same.)
    plan = plan_of(overdue_checks[0])
    assert "delivery_due" in plan or (connection.vendor == "postgresql" and "delivery_state_log" in plan), plan
    assert not [q for q in captured if "clusterbeat" in q["sql"]]
