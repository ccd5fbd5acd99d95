"""Under 15 % 5xx and 2 % timeouts from Intercom, nothing is lost: every group's company is
created and attached, and the event-name cap fills to exactly its limit."""

import base64
import json

import pytest
import requests

from forwarding import event_names
from forwarding.models import Delivery, EventName, State
from tests.processes import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
USERS = 30
NAMES = 130  # more than the cap of 120
LIMIT = 120


def post(url, key, messages):
    auth = base64.b64encode(f"{key}:".encode()).decode()
    for start in range(0, len(messages), 100):
        response = requests.post(
            f"{url}/v1/batch",
            data=json.dumps({"batch": messages[start : start + 100]}),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text


def traffic():
    messages = []
    for n in range(USERS):
        user = f"user-{n}"
        messages.append({"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"}})
        messages.append({"type": "group", "userId": user, "groupId": f"org-{n % 10}", "traits": {"name": f"Org {n}"}})
    for n in range(NAMES):
        user = f"user-{n % USERS}"
        messages.append(
            {
                "type": "track",
                "userId": user,
                "event": f"Event {n:03d}",
                "timestamp": f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}Z",
            }
        )
    return messages


def test_under_server_errors_and_timeouts_companies_are_attached_and_the_cap_fills_exactly(
    live_server, source, cluster, sandbox
):
    cluster.configure(RELAY_RETRY_SCHEDULE="1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s")
    sandbox.sandbox.configure(error_rate=0.15, error_statuses=[500, 502, 503, 504], slow_rate=0.02, slow_ms=2500)
    post(live_server.url, source[1], traffic())

    def settled():
        states = list(Delivery.objects.values_list("state", flat=True))
        return states and all(s in (State.DELIVERED, State.HELD, State.FAILED) for s in states)

    wait_until(settled, 240, interval=1, message="every delivery delivered or held")
    sandbox.sandbox.configure(error_rate=0.0, slow_rate=0.0)

    states = list(Delivery.objects.values_list("state", flat=True))
    assert State.FAILED not in states
    assert states.count(State.HELD) == NAMES - LIMIT
    # The cap: exactly the limit, in the relay and in Intercom.
    assert len(sandbox.state.event_names["active"]) == LIMIT
    assert event_names.used() == LIMIT
    assert EventName.objects.filter(slot_used_at__isnull=False, delivered_count=0).count() == 0
    # Every group's company, created and attached to each of its users.
    companies = {c["company_id"]: c["id"] for c in sandbox.state.companies}
    assert set(companies) == {f"org-{n}" for n in range(10)}
    attached = {(a["contact_id"], a["company_id"]) for a in sandbox.state.attachments}
    for n in range(USERS):
        contact = sandbox.state.contact_by_external_id(f"user-{n}")
        assert (contact["id"], companies[f"org-{n % 10}"]) in attached
    cluster.configure()
