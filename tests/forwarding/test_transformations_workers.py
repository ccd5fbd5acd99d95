"""The rules' cache under a real qcluster of four workers: each worker process keeps the rules it
compiled until the rule set's version moves, so a rule saved while they run applies to every
call delivered after it, whichever worker takes it (docs/delivery.md, "Transformations")."""

import pytest

from forwarding.models import Attempt, Rule, State
from forwarding.transformations import store as rule_store
from tests.forwarding.test_fidelity_e2e import Relay, identify

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
USERS = 16


@pytest.fixture
def relay(live_server, source, cluster, sandbox, settings):
    cluster.configure(RELAY_WORKERS=4)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    return Relay(live_server.url, source[1], sandbox)


def viewed(user, second):
    return {"type": "track", "userId": user, "event": "Viewed", "timestamp": f"2026-01-01T00:00:{second:02d}Z"}


def test_a_rule_saved_while_four_workers_run_applies_to_every_later_call(relay):
    users = [f"user-{n}" for n in range(USERS)]
    relay.batch(*[identify(u) for u in users], *[viewed(u, 1) for u in users])
    before = relay.wait_settled(2 * USERS)
    assert {d.state for d in before} == {State.DELIVERED}  # every worker has compiled the (empty) rules

    flag = rule_store.save(
        Rule(
            call_type="track",
            event="viewed",
            operations=[{"op": "set_constant", "path": "properties.flag", "value": "on"}],
        )
    )
    relay.batch(*[viewed(u, 2) for u in users])
    after = relay.wait_settled(3 * USERS)[2 * USERS :]

    assert {d.state for d in after} == {State.DELIVERED}
    assert [a.rules for a in Attempt.objects.filter(delivery__in=after)] == [[[flag.pk, 1]]] * USERS
    for user in users:
        flags = [e.get("metadata", {}).get("flag") for e in relay.sandbox.state.events_for(user)]
        assert sorted(flags, key=str) == [None, "on"], user  # the call before the rule, the one after
