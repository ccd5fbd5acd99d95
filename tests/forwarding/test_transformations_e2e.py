"""Transformation rules end to end: the Segment Python client -> ingestion (live server) -> a real
qcluster -> the Intercom sandbox over HTTP. A rule reshapes what Intercom receives, never the
stored call; a dropped call reaches nothing and takes no slot; a renamed event routes under its
new name; a resend uses the rules in force (docs/delivery.md, "Transformations")."""

import pytest
from segment.analytics import Client

from forwarding import services
from forwarding.models import Attempt, Call, Delivery, EventName, Rule, State
from forwarding.transformations import store
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SETTLED = (State.DELIVERED, State.SKIPPED, State.FAILED, State.HELD)


@pytest.fixture
def segment(live_server, source, cluster, sandbox):
    cluster.ensure_running()
    failures = []
    client = Client(
        source[1], host=live_server.url, sync_mode=True, max_retries=0, on_error=lambda e, batch: failures.append(e)
    )
    yield client
    assert failures == []


def rule(event, *operations, name=""):
    return store.save(Rule(name=name, call_type="track", event=event, operations=list(operations)))


def settled(user, event, attempts=0, timeout=30):
    """The delivery of `user`'s `event` once it is in a final state with at least `attempts`
    attempts (a skipped call has none)."""

    def done():
        found = Delivery.objects.filter(user_id=user, call__event=event).first()
        if found and found.state in SETTLED and found.attempts.count() >= attempts:
            return found
        return None

    return wait_until(done, timeout, message=f"{user}'s {event!r} settled after {attempts} attempts or more")


def posted_events(sandbox, name):
    """Bodies of the POST /events the sandbox received with this event_name."""
    bodies = [r["request_body"] for r in sandbox.requests_to("POST", "/events")]
    return [body for body in bodies if isinstance(body, dict) and body.get("event_name") == name]


def test_a_rule_renames_a_property_in_what_intercom_gets_not_in_the_stored_call(segment, sandbox):
    moved = rule(
        "Order Completed",
        {"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"},
        name="cart total is revenue",
    )
    segment.identify("ann", {"email": "ann@example.com"})
    segment.track("ann", "Order Completed", {"cart_total": 12.5})

    delivery = settled("ann", "Order Completed")

    assert delivery.state == State.DELIVERED
    [event] = sandbox.state.events_for("ann")
    assert event["event_name"] == "Order Completed"
    assert event["metadata"]["price"] == {"amount": 1250, "currency": "USD"}
    assert "cart_total" not in event["metadata"]
    assert Call.objects.get(pk=delivery.pk).payload["properties"] == {"cart_total": 12.5}  # as received
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.rules == [[moved.pk, moved.revision]]


def test_a_dropped_call_is_skipped_reaches_nothing_and_takes_no_slot(segment, sandbox):
    dropping = rule("Debug Ping", {"op": "drop"})
    segment.identify("bob", {"email": "bob@example.com"})
    segment.track("bob", "Debug Ping", {"n": 1})
    segment.track("bob", "Kept", {"n": 2})

    dropped = settled("bob", "Debug Ping")
    settled("bob", "Kept")

    assert (dropped.state, dropped.last_error) == (State.SKIPPED, f"dropped by rule {dropping.pk}")
    assert not dropped.attempts.exists()  # nothing was sent
    assert [e["event_name"] for e in sandbox.state.events_for("bob")] == ["Kept"]
    assert posted_events(sandbox, "Debug Ping") == []
    assert EventName.objects.get(key="debug ping").slot_used_at is None
    assert EventName.objects.get(key="kept").slot_used_at is not None


def test_a_renamed_event_arrives_under_its_new_name_which_holds_the_slot(segment, sandbox):
    rule("Signup", {"op": "rename_event", "to": "Signed Up"})
    segment.identify("cy", {"email": "cy@example.com"})
    segment.track("cy", "Signup", {"plan": "pro"})

    delivery = settled("cy", "Signup")

    assert delivery.state == State.DELIVERED
    assert [e["event_name"] for e in sandbox.state.events_for("cy")] == ["Signed Up"]
    slots = dict(EventName.objects.values_list("key", "slot_used_at"))
    assert slots["signed up"] is not None
    assert slots.get("signup") is None  # the old name takes no slot


def test_a_resend_after_the_rule_changed_uses_the_rule_in_force(segment, sandbox):
    stamp = rule("Upgraded", {"op": "set_constant", "path": "properties.plan", "value": "basic"})
    segment.identify("dee", {"email": "dee@example.com"})
    segment.track("dee", "Upgraded")
    delivery = settled("dee", "Upgraded", attempts=1)
    assert [e["metadata"] for e in sandbox.state.events_for("dee")] == [{"plan": "basic"}]

    stamp.operations = [
        {"op": "set_constant", "path": "properties.plan", "value": "pro"},
        # Another name, so that Intercom does not collapse the resent event into the first one.
        {"op": "rename_event", "to": "Plan Upgraded"},
    ]
    store.save(stamp)
    assert services.resend(delivery)
    delivery = settled("dee", "Upgraded", attempts=2)

    assert delivery.state == State.DELIVERED
    events = {e["event_name"]: e["metadata"] for e in sandbox.state.events_for("dee")}
    assert events == {"Upgraded": {"plan": "basic"}, "Plan Upgraded": {"plan": "pro"}}
    assert [a.rules for a in delivery.attempts.order_by("pk")] == [[[stamp.pk, 1]], [[stamp.pk, 2]]]
    assert Call.objects.get(pk=delivery.pk).payload.get("properties", {}) == {}  # the stored call never changes
