"""Mapping parity through the engine, against the sandbox: what the peers' Intercom destinations
do, the relay does (docs/delivery.md, "Mapping")."""

import pytest

from forwarding.delivery import loop
from forwarding.mapping import DISABLED_REASON
from forwarding.models import Delivery, EventName, State

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_worker")]


def deliver(*pks):
    loop.deliver_many(list(pks))
    return [Delivery.objects.get(pk=pk) for pk in pks]


def test_a_call_that_turns_intercom_off_is_skipped_sends_nothing_and_takes_no_slot(store, sandbox):
    identify = {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}}
    off = {"type": "track", "userId": "ann", "event": "Secret", "integrations": {"Intercom": False}}
    all_off = {"type": "track", "userId": "ann", "event": "Quiet", "integrations": {"All": False}}
    on = {"type": "track", "userId": "ann", "event": "Loud", "integrations": {"All": False, "Intercom": True}}

    identified, *tracked = deliver(*store(identify, off, all_off, on))

    assert [d.state for d in tracked] == [State.SKIPPED, State.SKIPPED, State.DELIVERED]
    assert tracked[0].last_error == DISABLED_REASON
    assert [e["event_name"] for e in sandbox.state.events_for("ann")] == ["Loud"]
    slotted = {entry.name: entry.slot_used_at is not None for entry in EventName.objects.all()}
    assert slotted == {"Secret": False, "Quiet": False, "Loud": True}


def test_an_order_completed_total_with_a_currency_symbol_is_the_price(store, sandbox):
    identify = {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}}
    order = {"type": "track", "userId": "ann", "event": "Order Completed", "properties": {"total": "$1,234.50"}}

    deliver(*store(identify, order))

    [event] = sandbox.state.events_for("ann")
    assert event["metadata"]["price"] == {"amount": 123450, "currency": "USD"}
    assert "total" not in event["metadata"]


def test_a_company_with_remove_is_detached_and_an_unknown_one_needs_nothing(store, sandbox):
    def identify(**traits):
        return {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", **traits}}

    deliver(*store(identify(companies=[{"id": "acme", "name": "Acme"}, {"id": "initech", "name": "Initech"}])))
    contact = sandbox.state.contact_by_external_id("ann")
    ids = {c["company_id"]: c["id"] for c in sandbox.state.companies}
    assert len(sandbox.state.attachments) == 2

    removed = deliver(
        *store(
            identify(company={"id": "acme", "remove": True}),
            {"type": "group", "userId": "ann", "groupId": "initech", "traits": {"remove": True}},
            {"type": "group", "userId": "ann", "groupId": "never-seen", "traits": {"remove": True}},
        )
    )

    assert [d.state for d in removed] == [State.DELIVERED] * 3
    assert sandbox.state.attachments == []
    assert {c["company_id"] for c in sandbox.state.companies} == {"acme", "initech"}  # none created
    deletes = [r["path"] for r in sandbox.requests if r["method"] == "DELETE"]
    assert deletes == [f"/contacts/{contact['id']}/companies/{ids[name]}" for name in ("acme", "initech")]


def test_an_anonymous_group_creates_its_company_at_once_and_attaches_after_the_identify(store, sandbox):
    grouped = {"type": "group", "anonymousId": "anon-1", "groupId": "acme", "traits": {"name": "Acme", "seats": 3}}
    [waiting] = deliver(*store(grouped))

    assert waiting.state == State.WAITING
    [company] = sandbox.state.companies
    assert (company["company_id"], company["name"], company["custom_attributes"]) == ("acme", "Acme", {"seats": 3})
    assert sandbox.state.attachments == []

    identify = {"type": "identify", "userId": "ann", "anonymousId": "anon-1", "traits": {"email": "ann@example.com"}}
    deliver(*store(identify))
    [released] = deliver(waiting.pk)

    assert released.state == State.DELIVERED
    contact = sandbox.state.contact_by_external_id("ann")
    assert sandbox.state.attachments == [{"contact_id": contact["id"], "company_id": company["id"]}]


def test_a_groups_tags_tag_its_company_after_it_is_written(store, sandbox):
    identify = {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}}
    grouped = {"type": "group", "userId": "ann", "groupId": "acme", "traits": {"name": "Acme", "tags": "VIP, beta"}}
    again = {"type": "group", "userId": "ann", "groupId": "acme", "traits": {"tags": ["vip"]}}

    deliveries = deliver(*store(identify, grouped, again))

    assert [d.state for d in deliveries] == [State.DELIVERED] * 3
    [company] = sandbox.state.companies
    assert [t["name"] for t in company["tags"]["tags"]] == ["VIP", "beta"]  # tagging again holds one
    assert "tags" not in company["custom_attributes"]
    calls = [(r["method"], r["path"]) for r in sandbox.requests if r["path"] in ("/companies", "/tags")]
    assert calls == [
        ("POST", "/companies"),
        ("POST", "/tags"),
        ("POST", "/tags"),
        ("POST", "/companies"),
        ("POST", "/tags"),
    ]
    assert sandbox.violations == []


def test_an_anonymous_groups_tags_tag_its_company_at_once(store, sandbox):
    grouped = {"type": "group", "anonymousId": "anon-1", "groupId": "acme", "traits": {"tags": ["trial"]}}

    [waiting] = deliver(*store(grouped))

    assert waiting.state == State.WAITING
    [company] = sandbox.state.companies
    assert [t["name"] for t in company["tags"]["tags"]] == ["trial"]
