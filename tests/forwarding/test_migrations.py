"""Migrations that move data: the event-names page's renames become rename-event rules."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from forwarding.models import Rule
from forwarding.transformations import store

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE, AFTER = ("forwarding", "0009_worker_watchdog"), ("forwarding", "0010_transformations")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def test_existing_renames_become_rename_event_rules_in_the_order_first_seen():
    old = migrate(BEFORE)
    EventName = old.get_model("forwarding", "EventName")
    target = EventName.objects.create(key="signed up", name="Signed Up")
    EventName.objects.create(key="sign up", name="Sign Up", rename_to=target)
    EventName.objects.create(key="signup", name="signup", rename_to=target)
    EventName.objects.create(key="plain", name="plain")

    try:
        migrate(AFTER)
        made = [(r.event, r.operations, r.position) for r in Rule.objects.order_by("position")]
        assert made == [
            ("Sign Up", [{"op": "rename_event", "to": "Signed Up"}], 1),
            ("signup", [{"op": "rename_event", "to": "Signed Up"}], 2),
        ]
        assert {key: found.to for key, found in store.renames().items()} == {
            "sign up": "Signed Up",
            "signup": "Signed Up",
        }
    finally:
        migrate(("forwarding", _latest()))


def _latest():
    executor = MigrationExecutor(connection)
    return max(name for app, name in executor.loader.graph.leaf_nodes() if app == "forwarding")


def test_failures_counted_before_the_tallies_had_causes_are_moved_under_theirs(make_call):
    from collections import Counter

    from django.utils import timezone

    from forwarding import tallies
    from forwarding.models import Delivery, DeliveryTally, State

    now = timezone.now().replace(minute=30)
    calls = [make_call(state="delivered", received_at=now) for _ in range(4)]
    try:
        migrate(("forwarding", "0015_redundant_indexes"))  # the triggers count without causes
        with connection.cursor() as cursor:
            for call, cause in zip(calls, ["http_400", "http_400", "timeout"], strict=False):
                cursor.execute(
                    "UPDATE forwarding_delivery SET state = 'failed', error_cause = %s WHERE call_id = %s",
                    [cause, call.pk],
                )
            cursor.execute("DELETE FROM forwarding_delivery WHERE call_id = %s", [calls[2].pk])  # pruned
        migrate(("forwarding", "0016_tally_causes"))
    finally:
        migrate(("forwarding", _latest()))

    by_state, by_cause = Counter(), Counter()
    for row in DeliveryTally.objects.all():
        by_state[row.state] += row.change
        if row.state == State.FAILED:
            by_cause[row.cause] += row.change
    # The pruned failure stays counted, under no cause; the others under theirs.
    assert +by_state == {State.FAILED: 3, State.DELIVERED: 1}
    assert +by_cause == {"http_400": 2, "": 1}
    tallies.fold()
    Delivery.objects.filter(call_id=calls[3].pk).update(state=State.FAILED, error_cause="timeout")  # new triggers
    assert {row.cause: row.change for row in DeliveryTally.objects.filter(state=State.FAILED, change__gt=0)} == {
        "http_400": 2,
        "": 1,
        "timeout": 1,
    }
