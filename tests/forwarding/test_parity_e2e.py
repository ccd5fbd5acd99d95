"""Mapping parity end to end: the Segment Python client, ingestion on a live server, a real
qcluster and the Intercom sandbox over HTTP. A company's tags, its removal and a call that turns
Intercom off arrive in Intercom as the peers' destinations deliver them."""

import pytest
from segment.analytics import Client

from forwarding.mapping import DISABLED_REASON
from forwarding.models import Delivery, State
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def segment(live_server, source, cluster):
    cluster.ensure_running()
    failures = []
    client = Client(source[1], host=live_server.url, on_error=lambda error, batch: failures.append(error))
    yield client
    client.shutdown()
    assert failures == []


def settled(count, timeout=60):
    def done():
        states = list(Delivery.objects.values_list("state", flat=True))
        return len(states) >= count and all(s in (State.DELIVERED, State.SKIPPED, State.FAILED) for s in states)

    wait_until(done, timeout, interval=0.2, message=f"{count} deliveries settled")
    return list(Delivery.objects.select_related("call").order_by("call__received_at", "pk"))


def test_tags_tag_the_company_and_remove_detaches_it(segment, sandbox):
    segment.identify("ann", {"email": "ann@example.com", "companies": [{"id": "acme"}, {"id": "initech"}]})
    segment.group("ann", "acme", {"name": "Acme", "tags": ["VIP", "beta"]})
    segment.flush()
    assert {d.state for d in settled(2)} == {State.DELIVERED}
    contact = sandbox.state.contact_by_external_id("ann")
    companies = {c["company_id"]: c for c in sandbox.state.companies}
    assert [t["name"] for t in companies["acme"]["tags"]["tags"]] == ["VIP", "beta"]
    assert "tags" not in companies["acme"]["custom_attributes"]
    assert len(sandbox.state.attachments) == 2

    segment.identify("ann", {"company": {"id": "acme", "remove": True}})
    segment.group("ann", "initech", {"remove": True})
    segment.group("ann", "never-seen", {"remove": True})
    segment.flush()
    deliveries = settled(5)

    assert [d.state for d in deliveries[2:]] == [State.DELIVERED] * 3
    assert sandbox.state.attachments == []
    assert set(companies) == {c["company_id"] for c in sandbox.state.companies}  # none created
    deletes = [r["path"] for r in sandbox.requests if r["method"] == "DELETE"]
    assert deletes == [f"/contacts/{contact['id']}/companies/{companies[n]['id']}" for n in ("acme", "initech")]
    assert sandbox.violations == []


def test_a_call_that_turns_intercom_off_is_skipped_and_never_reaches_it(segment, sandbox):
    segment.identify("bea", {"email": "bea@example.com"})
    segment.track("bea", "Secret", {"plan": "pro"}, integrations={"Intercom": False})
    segment.track("bea", "Quiet", integrations={"All": False})
    segment.track("bea", "Loud", integrations={"All": False, "Intercom": True})
    segment.flush()

    deliveries = settled(4)

    by_event = {d.call.event: d for d in deliveries if d.call.event}
    assert (by_event["Secret"].state, by_event["Secret"].last_error) == (State.SKIPPED, DISABLED_REASON)
    assert (by_event["Quiet"].state, by_event["Quiet"].last_error) == (State.SKIPPED, DISABLED_REASON)
    assert by_event["Loud"].state == State.DELIVERED
    assert [e["event_name"] for e in sandbox.state.events_for("bea")] == ["Loud"]
    sent_names = [r["request_body"]["event_name"] for r in sandbox.requests if r["path"] == "/events"]
    assert sent_names == ["Loud"]
