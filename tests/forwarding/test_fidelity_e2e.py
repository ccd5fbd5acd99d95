"""Fidelity end to end (docs/fidelity.md): calls through ingestion (live server), a real qcluster of
four workers delivering at once, and the Intercom sandbox over HTTP. What the clients sent is in
Intercom, under an alias where the name is the other model's, whatever the workers' races."""

import base64
import json

import pytest
import requests

from forwarding import services
from forwarding.models import DataAttribute, Delivery, State
from forwarding.sandbox.testing import running_sandbox
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
USERS = 16


@pytest.fixture
def relay(live_server, source, cluster, sandbox, settings):
    cluster.configure(RELAY_WORKERS=4)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}  # a task for each worker
    return Relay(live_server.url, source[1], sandbox)


class Relay:
    def __init__(self, url, key, sandbox):
        self.url, self.key, self.sandbox = url, key, sandbox

    def batch(self, *messages):
        auth = base64.b64encode(f"{self.key}:".encode()).decode()
        response = requests.post(
            f"{self.url}/v1/batch",
            data=json.dumps({"batch": list(messages)}),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    def wait_settled(self, count, timeout=60):
        def settled():
            states = list(Delivery.objects.values_list("state", flat=True))
            return len(states) >= count and all(s in (State.DELIVERED, State.FAILED) for s in states)

        wait_until(settled, timeout, message=f"{count} deliveries settled")
        return list(Delivery.objects.order_by("created_at", "pk"))


def identify(user_id, **traits):
    return {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com", **traits}}


def group(user_id, group_id, **traits):
    return {"type": "group", "userId": user_id, "groupId": group_id, "traits": {"name": group_id, **traits}}


def test_new_traits_sent_by_many_users_at_once_reach_every_contact(relay):
    users = [f"user-{n}" for n in range(USERS)]
    relay.batch(*[identify(u, loyalty="gold", address={"city": "Paris"}) for u in users])

    deliveries = relay.wait_settled(USERS)

    assert {d.state for d in deliveries} == {State.DELIVERED}
    # The nested trait is flattened (and said so); no value was dropped.
    assert {w for d in deliveries for w in d.warnings} == {"traits.address: nested object flattened to address_city"}
    for user in users:
        contact = relay.sandbox.state.contact_by_external_id(user)
        assert contact["custom_attributes"] == {"loyalty": "gold", "address_city": "Paris"}, user
    assert DataAttribute.objects.filter(usable=False).count() == 0
    # A later change of a trait is sent with it.
    relay.batch(identify(users[0], loyalty="platinum"))
    relay.wait_settled(USERS + 1)
    assert relay.sandbox.state.contact_by_external_id(users[0])["custom_attributes"]["loyalty"] == "platinum"


def test_a_trait_name_of_contacts_and_companies_keeps_both_values(relay):
    relay.batch(identify("ann", tier="gold"), group("ann", "acme", tier="enterprise"))

    deliveries = relay.wait_settled(2)

    assert [d.state for d in deliveries] == [State.DELIVERED, State.DELIVERED]
    assert relay.sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"tier": "gold"}
    [company] = relay.sandbox.state.companies
    assert company["custom_attributes"] == {"company_tier": "enterprise"}
    assert "written as 'company_tier'" in deliveries[1].warnings[0]


def test_an_attribute_archived_in_intercom_between_two_identifies(relay):
    relay.batch(identify("ann", seats=3))
    relay.wait_settled(1)
    relay.sandbox.state.archive_data_attribute("seats")

    relay.batch(identify("ann", seats=4, team="blue"))

    second = relay.wait_settled(2)[1]
    assert second.state == State.DELIVERED
    assert relay.sandbox.state.contact_by_external_id("ann")["custom_attributes"]["team"] == "blue"
    assert second.warnings and "'seats' dropped: archived" in second.warnings[0]


def test_a_token_of_another_workspace_never_reuses_the_first_workspaces_ids(relay, cluster):
    relay.batch(identify("ann", tier="gold"), group("ann", "acme", seats=5))
    first_identify, _ = relay.wait_settled(2)
    first = relay.sandbox.state
    first_ids = {first.contact_by_external_id("ann")["id"], first.companies[0]["id"]}

    with running_sandbox(token="second-workspace-token") as second:
        cluster.configure(RELAY_WORKERS=4, INTERCOM_API_BASE=second.url, INTERCOM_ACCESS_TOKEN="second-workspace-token")
        relay.batch({"type": "track", "userId": "ann", "event": "Signed In"}, group("ann", "acme", seats=6))
        # Ann is unknown there: her last identify is sent again, then her calls follow it.
        deliveries = relay.wait_settled(4, timeout=90)

        assert {d.state for d in deliveries} == {State.DELIVERED}
        contact = second.state.contact_by_external_id("ann")
        assert contact["custom_attributes"] == {"tier": "gold"}
        [company] = second.state.companies
        assert company["custom_attributes"] == {"seats": 6}
        assert second.state.attachments == [{"contact_id": contact["id"], "company_id": company["id"]}]
        assert [e["event_name"] for e in second.state.events_for("ann")] == ["Signed In"]
        used = " ".join(r["path"] + json.dumps(r.get("request_body")) for r in second.requests)
        assert not any(old in used for old in first_ids)

        # A resend of the first call goes to the workspace configured now.
        assert services.resend(Delivery.objects.get(pk=first_identify.pk))
        wait_until(lambda: Delivery.objects.get(pk=first_identify.pk).state == State.DELIVERED, 30)
        second.assert_clean()
    cluster.configure()
