"""Transformation rules in the delivery engine, against the sandbox (docs/delivery.md, "Transformations"):
applied at delivery to a copy of the payload, recorded on each attempt, counted by the event-name
registry under the name they give, and re-read by every worker once they change."""

import pytest

from forwarding import event_names, services
from forwarding.delivery import loop
from forwarding.models import Attempt, Call, Delivery, EventName, Rule, State
from forwarding.transformations import store as rule_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_worker")]
IDENTIFY = {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}}


def deliver(*pks):
    loop.deliver_many(list(pks))
    return [Delivery.objects.get(pk=pk) for pk in pks]


def rule(call_type="track", event="", **fields):
    return rule_store.save(Rule(call_type=call_type, event=event, **fields))


def track(event, **properties):
    return {"type": "track", "userId": "ann", "event": event, "properties": properties}


def test_a_rule_reshapes_what_is_sent_never_what_is_stored_and_the_attempt_records_it(store, sandbox):
    moved = rule(
        event="order completed",
        operations=[{"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}],
    )
    stamped = rule(operations=[{"op": "copy_field", "from": "context.page.url", "to": "properties.page_url"}])
    message = {
        **track("Order Completed", cart_total="12.50"),
        "context": {"page": {"url": "https://shop.example/cart"}},
    }

    _, delivered = deliver(*store(IDENTIFY, message))

    assert delivered.state == State.DELIVERED
    [event] = sandbox.state.events_for("ann")
    assert event["metadata"] == {"price": {"amount": 1250, "currency": "USD"}, "page_url": "https://shop.example/cart"}
    assert Call.objects.get(pk=delivered.pk).payload["properties"] == {"cart_total": "12.50"}  # stored as received
    attempt = Attempt.objects.get(delivery=delivered)
    assert attempt.rules == [[moved.pk, 1], [stamped.pk, 1]]


def test_a_dropped_call_is_skipped_and_takes_no_slot(store, sandbox):
    dropping = rule(event="Debug Ping", operations=[{"op": "drop"}])

    _, dropped = deliver(*store(IDENTIFY, track("debug ping")))

    assert (dropped.state, dropped.last_error) == (State.SKIPPED, f"dropped by rule {dropping.pk}")
    assert sandbox.state.events_for("ann") == []
    assert EventName.objects.get(key="debug ping").slot_used_at is None


def test_a_renamed_event_takes_its_own_slot_and_the_old_name_none(store, sandbox, settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 1
    rule(event="Signup", operations=[{"op": "rename_event", "to": "Signed Up"}])

    later = {**track("signup"), "timestamp": "2026-01-01T00:00:05Z"}  # not deduplicated with the first
    _, first, second = deliver(*store(IDENTIFY, {**track("Signup"), "timestamp": "2026-01-01T00:00:00Z"}, later))

    assert [first.state, second.state] == [State.DELIVERED, State.DELIVERED]
    assert [e["event_name"] for e in sandbox.state.events_for("ann")] == ["Signed Up", "Signed Up"]
    slots = dict(EventName.objects.values_list("key", "slot_used_at"))
    assert slots["signed up"] is not None and slots["signup"] is None  # one slot, under the new name


def test_a_resend_uses_the_rules_in_force(store, sandbox):
    tier = rule(event="Upgraded", operations=[{"op": "set_constant", "path": "properties.tier", "value": "gold"}])
    _, upgraded = deliver(*store(IDENTIFY, track("Upgraded")))
    tier.operations = [{"op": "set_constant", "path": "properties.tier", "value": "platinum"}]
    rule_store.save(tier)

    assert services.resend(upgraded)
    [resent] = deliver(upgraded.pk)

    assert resent.state == State.DELIVERED
    sent = [r["request_body"]["metadata"]["tier"] for r in sandbox.requests if r["path"] == "/events"]
    assert sent == ["gold", "platinum"]
    assert [a.rules for a in Attempt.objects.filter(delivery=upgraded).order_by("pk")] == [
        [[tier.pk, 1]],
        [[tier.pk, 2]],
    ]


def test_a_disabled_rule_is_not_applied_and_the_cache_sees_every_change(store, sandbox):
    off = rule(event="Clicked", enabled=False, operations=[{"op": "drop"}])
    _, sent = deliver(*store(IDENTIFY, track("Clicked")))
    assert sent.state == State.DELIVERED

    off.enabled = True
    rule_store.save(off)  # the version moves: the next task reads the rules again
    [dropped] = deliver(*store(track("Clicked")))
    assert dropped.state == State.SKIPPED

    rule_store.delete(off)
    [kept] = deliver(*store(track("Clicked")))
    assert kept.state == State.DELIVERED


def test_the_event_names_page_rename_is_a_rename_event_rule(store, sandbox):
    [identified] = deliver(*store(IDENTIFY))
    entry = EventName.objects.create(key="sign up", name="Sign Up")

    event_names.rename(entry, "Signed Up")

    [made] = Rule.objects.all()
    assert (made.call_type, made.event, made.operations) == (
        "track",
        "Sign Up",
        [{"op": "rename_event", "to": "Signed Up"}],
    )
    [renamed] = deliver(*store(track("Sign Up")))
    assert renamed.state == State.DELIVERED
    assert [e["event_name"] for e in sandbox.state.events_for("ann")] == ["Signed Up"]
