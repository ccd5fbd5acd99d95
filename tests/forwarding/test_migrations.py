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
