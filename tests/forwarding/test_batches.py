"""Deliveries travel in batches: one task takes up to fifty, in the order received, and hands on
what it could not finish (its budget, or a user's next call it found blocked)."""

import base64
import json

import pytest

from forwarding import services
from forwarding.models import Delivery, State

pytestmark = pytest.mark.django_db


def test_a_task_takes_at_most_fifty_deliveries_and_each_worker_gets_one(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    assert services.batches([7]) == [[7]]
    assert services.batches(list(range(10))) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    sizes = [len(batch) for batch in services.batches(list(range(230)))]
    assert sizes == [50, 50, 50, 50, 30]
    assert [pk for batch in services.batches(list(range(230))) for pk in batch] == list(range(230))


@pytest.fixture
def store(client, source):
    """Stores a /v1/batch through the API; returns the new deliveries' pks in the order received."""
    auth = "Basic " + base64.b64encode(f"{source[1]}:".encode()).decode()

    def post(*messages):
        before = set(Delivery.objects.values_list("pk", flat=True))
        response = client.post(
            "/v1/batch", json.dumps({"batch": list(messages)}), content_type="application/json", HTTP_AUTHORIZATION=auth
        )
        assert response.status_code == 200, response.content
        rows = Delivery.objects.exclude(pk__in=before).order_by("created_at", "pk")
        return list(rows.values_list("pk", flat=True))

    return post


@pytest.fixture
def handed_on(monkeypatch):
    """The deliveries a task puts back on the queue (this test is the only worker)."""
    handed = []
    monkeypatch.setattr(services, "enqueue", lambda pks: handed.append(list(pks)) or True)
    return handed


def identify(user_id):
    return {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com"}}


def track(user_id, event):
    return {"type": "track", "userId": user_id, "event": event}


def test_one_task_delivers_its_batch_and_hands_on_what_its_budget_leaves(store, sandbox, handed_on):
    pks = store(identify("ann"), identify("bob"), track("ann", "First"), track("bob", "Other"), track("ann", "Second"))
    services.deliver_many(pks[:3])
    services.deliver_many(pks[3:], budget=0)  # the first is always tried; the budget is spent

    states = dict(Delivery.objects.values_list("pk", "state"))
    assert [states[pk] for pk in pks] == [State.DELIVERED] * 4 + [State.PENDING]
    assert handed_on == [[pks[4]]]

    services.deliver_many(handed_on[0])
    assert [event["event_name"] for event in sandbox.state.events_for("ann")] == ["First", "Second"]
    assert Delivery.objects.filter(state=State.DELIVERED).count() == 5


def test_a_call_found_blocked_is_handed_on_when_the_users_older_call_is_delivered(store, sandbox, handed_on):
    store(identify("cat"))
    first, second = store(track("cat", "Older"), track("cat", "Newer"))
    services.deliver_many(
        Delivery.objects.filter(state=State.PENDING, call__type="identify").values_list("pk", flat=True)
    )

    services.deliver_many([second])  # its task comes first: it waits for the older call
    assert Delivery.objects.get(pk=second).state == State.PENDING
    assert handed_on == []

    services.deliver_many([first])
    assert handed_on == [[second]]
    services.deliver_many(handed_on[0])
    assert [event["event_name"] for event in sandbox.state.events_for("cat")] == ["Older", "Newer"]
