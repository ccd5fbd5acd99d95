"""200 distinct event names through the Segment client, a real worker and the sandbox."""

import pytest
from segment.analytics import Client

from forwarding.models import Delivery, State
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_it_stops_at_the_cap_so_intercom_never_refuses_a_name(live_server, source, cluster, sandbox):
    cluster.ensure_running()
    _, key = source
    failures = []
    client = Client(key, host=live_server.url, upload_size=100, on_error=lambda e, batch: failures.append(e))
    client.identify("many-names", {"email": "many@example.com"})
    for n in range(200):
        client.track("many-names", f"Event Number {n:03d}")
    client.flush()
    assert failures == []

    def settled():
        states = list(Delivery.objects.values_list("state", flat=True))
        return len(states) == 201 and all(s in (State.DELIVERED, State.HELD) for s in states)

    wait_until(settled, 120, interval=0.5, message="200 names delivered or held")
    assert Delivery.objects.filter(state=State.DELIVERED).count() == 121
    assert Delivery.objects.filter(state=State.HELD).count() == 80
    assert sandbox.counters.get("status.422", 0) == 0
    assert len(sandbox.state.event_names["active"]) == 120
    held = Delivery.objects.filter(state=State.HELD).values_list("call__event", flat=True)
    assert min(held) == "Event Number 120"  # the first 120 names seen took the slots
