"""The event-name rules against the sandbox: hold at the cap, archive, rename, release, 422."""

import pytest

from forwarding import event_names, services
from forwarding.delivery import loop, sweeper
from forwarding.models import Delivery, EventName, IntercomStatus, NameStatus, State, Trigger
from tests.forwarding.ingest import post_batch


@pytest.fixture
def relay(client, source, sandbox, settings):
    """Stores calls through the ingestion API and delivers them in this process, in order."""
    settings.INTERCOM_EVENT_NAME_LIMIT = 3
    _, key = source
    return Relay(client, key, sandbox)


class Relay:
    def __init__(self, client, key, sandbox):
        self.client = client
        self.key = key
        self.sandbox = sandbox
        self.sent = 0

    def send(self, *messages):
        for message in messages:
            self.sent += 1
            message.setdefault("messageId", f"m-{self.sent}")
            message.setdefault("timestamp", f"2026-03-01T10:00:{self.sent:02d}Z")
        post_batch(self.client, self.key, messages)
        self.deliver_due()

    def identify(self, user_id):
        self.send({"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com"}})

    def track(self, user_id, *names):
        self.send(*({"type": "track", "userId": user_id, "event": name} for name in names))

    def deliver_due(self):
        """What the worker does: each due delivery in the order received."""
        for pk in (
            Delivery.objects.filter(state=State.PENDING).order_by("created_at", "pk").values_list("pk", flat=True)
        ):
            loop.deliver(pk, budget=0)

    def state_of(self, name):
        return list(
            Delivery.objects.filter(call__event=name).order_by("created_at", "pk").values_list("state", flat=True)
        )

    def sandbox_names(self):
        return [e["event_name"] for e in self.sandbox.state.events]


def test_it_holds_a_name_past_the_cap_without_asking_intercom(relay):
    relay.identify("u1")
    relay.track("u1", "one", "two", "three")
    requests_before = len(relay.sandbox.requests)

    relay.track("u1", "four")
    assert relay.state_of("four") == [State.HELD]
    assert len(relay.sandbox.requests) == requests_before
    assert event_names.usage().used == 3
    assert EventName.objects.get(key="four").held_count == 1
    assert relay.sandbox_names() == ["one", "two", "three"]


def test_it_releases_held_names_oldest_first_when_a_name_is_archived(relay):
    relay.identify("u1")
    relay.track("u1", "one", "two", "three", "four", "five", "four")
    assert relay.state_of("four") == [State.HELD, State.HELD]

    released = event_names.archive(EventName.objects.get(key="two"))
    assert released == ["four"]
    relay.deliver_due()
    assert relay.state_of("four") == [State.DELIVERED, State.DELIVERED]
    assert relay.state_of("five") == [State.HELD]
    four = [e for e in relay.sandbox.state.events if e["event_name"] == "four"]
    assert [e["created_at"] for e in four] == sorted(e["created_at"] for e in four)
    assert EventName.objects.get(key="four").held_count == 0

    relay.track("u1", "two")
    assert relay.state_of("two") == [State.DELIVERED, State.SUPPRESSED]
    assert EventName.objects.get(key="two").suppressed_count == 1


def test_a_forced_resend_sends_a_suppressed_call_past_its_archived_name_once(relay):
    relay.identify("u1")
    relay.track("u1", "Old Name")
    event_names.archive(EventName.objects.get(key="old name"))
    relay.track("u1", "Old Name")
    assert relay.state_of("Old Name") == [State.DELIVERED, State.SUPPRESSED]
    suppressed = Delivery.objects.filter(call__event="Old Name", state=State.SUPPRESSED).get()

    services.resend(suppressed, Trigger.BULK)  # a bulk resend keeps honouring the archive
    relay.deliver_due()
    assert relay.state_of("Old Name") == [State.DELIVERED, State.SUPPRESSED]

    services.resend(suppressed)  # the operator's Resend on this one call forces it
    relay.deliver_due()
    assert relay.state_of("Old Name") == [State.DELIVERED, State.DELIVERED]
    assert [e["event_name"] for e in relay.sandbox.state.events_for("u1")] == ["Old Name", "Old Name"]
    attempt = suppressed.attempts.order_by("-started_at").first()
    assert any("forced resend" in warning for warning in attempt.warnings)
    entry = EventName.objects.get(key="old name")
    assert (entry.status, entry.slot_used_at) == (NameStatus.ARCHIVED, None)

    relay.track("u1", "Old Name")  # new calls are still suppressed
    assert relay.state_of("Old Name")[-1] == State.SUPPRESSED


def test_it_forwards_a_renamed_name_under_its_target_and_resends_held_calls(relay):
    relay.identify("u1")
    relay.track("u1", "one", "two", "three", "Signed-Up")
    assert relay.state_of("Signed-Up") == [State.HELD]

    target, moved = event_names.rename(EventName.objects.get(key="signed-up"), "one", resend_held_and_failed=True)
    assert (target.key, moved) == ("one", 1)
    relay.deliver_due()
    relay.track("u1", "Signed-Up")
    assert relay.state_of("Signed-Up") == [State.DELIVERED, State.DELIVERED]
    assert relay.sandbox_names().count("one") == 3
    assert "Signed-Up" not in relay.sandbox_names()
    assert event_names.usage().used == 3


def test_it_keeps_one_row_for_case_variants_of_a_name(relay):
    relay.identify("u1")
    relay.track("u1", "Signed Up", "signed up", "SIGNED UP")
    [entry] = EventName.objects.filter(key="signed up")
    assert (entry.name, entry.total_count, entry.delivered_count) == ("Signed Up", 3, 3)
    assert event_names.usage().used == 1


def test_it_holds_and_flags_when_intercom_counts_names_the_relay_did_not_send(relay, settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 120
    relay.sandbox.state.prefill_event_names([f"someone-else-{n}" for n in range(119)])
    relay.identify("u1")
    relay.track("u1", "mine")
    relay.track("u1", "one too many")
    assert relay.state_of("mine") == [State.DELIVERED]
    assert relay.state_of("one too many") == [State.HELD]
    entry = EventName.objects.get(key="one too many")
    assert entry.slot_used_at is None and entry.intercom_refused_at is not None
    status = IntercomStatus.get()
    assert status.cap_refused_at is not None and status.cap_refused_usage == 1


def test_it_does_not_pass_the_cap_when_a_name_is_unarchived_while_full(relay):
    relay.identify("u1")
    relay.track("u1", "one", "two", "three")
    event_names.archive(EventName.objects.get(key="one"))
    relay.track("u1", "four", "one")
    assert relay.state_of("one") == [State.DELIVERED, State.SUPPRESSED]

    event_names.unarchive(EventName.objects.get(key="one"))
    relay.deliver_due()
    assert relay.state_of("one") == [State.DELIVERED, State.HELD]
    assert event_names.usage().used == 3
    assert EventName.objects.get(key="one").status == NameStatus.ACTIVE


def test_it_releases_held_names_when_the_limit_is_raised(relay, settings):
    relay.identify("u1")
    relay.track("u1", "one", "two", "three", "four")
    settings.INTERCOM_EVENT_NAME_LIMIT = 4
    assert sweeper.sweep()["released"] == ["four"]
    relay.deliver_due()
    assert relay.state_of("four") == [State.DELIVERED]


def test_it_counts_page_calls_under_one_name(relay):
    relay.identify("u1")
    relay.send(*({"type": "page", "userId": "u1", "name": f"Page {n}"} for n in range(5)))
    [entry] = EventName.objects.all()
    assert (entry.key, entry.total_count, entry.delivered_count) == ("viewed-page", 5, 5)
    assert set(relay.sandbox_names()) == {"viewed-page"}


def test_arrivals_add_to_each_names_total_hour_and_last_seen(make_call):
    """Counted in one statement per table: later batches add, and a late-arriving older call
    neither moves last_seen_at back nor lands in the newer hour."""
    from datetime import UTC, datetime

    from forwarding.models import EventNameHour

    def at(hour, minute):
        return datetime(2026, 3, 1, hour, minute, tzinfo=UTC)

    def hours(name):
        rows = EventNameHour.objects.filter(event_name__key=name).order_by("hour")
        return [(row.hour.hour, row.count) for row in rows]

    signed_up = [make_call(event="Signed Up", received_at=at(10, minute)) for minute in (5, 20)]
    viewed = make_call(event="Viewed Page", received_at=at(11, 10))
    event_names.record_arrivals([*signed_up, viewed])
    event_names.record_arrivals([make_call(event="signed up", received_at=at(9, 0))])
    event_names.record_arrivals([make_call(event="Signed Up", received_at=at(10, 40))])

    entry = EventName.objects.get(key="signed up")
    assert (entry.name, entry.total_count, entry.last_seen_at) == ("Signed Up", 4, at(10, 40))
    assert hours("signed up") == [(9, 1), (10, 3)]
    assert EventName.objects.get(key="viewed page").total_count == 1
    assert hours("viewed page") == [(11, 1)]


def test_a_resent_call_counts_once_as_delivered(relay):
    relay.identify("u1")
    relay.track("u1", "Ordered")
    delivery = Delivery.objects.get(call__event="Ordered")

    for _ in range(2):
        assert services.resend(delivery)
        relay.deliver_due()
        delivery.refresh_from_db()
        assert delivery.state == State.DELIVERED

    entry = EventName.objects.get(key="ordered")
    assert (entry.total_count, entry.delivered_count) == (1, 1)  # "Delivered" never above "Total"


def test_a_known_name_is_counted_in_two_statements_and_a_wrong_remembered_id_heals(make_call):
    """A website's single call counts a name this process already knows without looking it up;
    an id remembered wrongly (a rolled-back row, an emptied database) is noticed, not counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    event_names.record_arrivals([make_call(event="Signed Up"), make_call(event="Ordered")])
    signed_up, ordered = EventName.objects.get(key="signed up"), EventName.objects.get(key="ordered")

    with CaptureQueriesContext(connection) as statements:
        event_names.record_arrivals([make_call(event="Signed Up")])
    on_names = [q["sql"] for q in statements if "forwarding_eventname" in q["sql"]]
    assert len(on_names) == 2 and not [
        sql for sql in on_names if sql.startswith(("SELECT", 'INSERT INTO "forwarding_eventname" '))
    ]

    event_names._known_ids["signed up"] = ordered.pk  # wrong
    event_names.record_arrivals([make_call(event="Signed Up")])
    event_names._known_ids["ordered"] = ordered.pk + signed_up.pk + 1000  # no such row
    event_names.record_arrivals([make_call(event="Ordered")])

    counts = dict(EventName.objects.values_list("key", "total_count"))
    assert counts == {"signed up": 3, "ordered": 2}
    assert event_names._known_ids["signed up"] == signed_up.pk
    assert event_names._known_ids["ordered"] == ordered.pk
