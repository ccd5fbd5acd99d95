"""The delivery engine end to end: the Segment client -> ingestion (live server) -> a real
qcluster process -> the Intercom sandbox over HTTP. Assertions are on the sandbox's state."""

import time

import pytest
from segment.analytics import Client

from forwarding import services
from forwarding.delivery import sweeper
from forwarding.models import Attempt, Delivery, IntercomStatus, Outcome, State
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def relay(live_server, source, cluster, sandbox):
    """Sends calls through the real Segment client; returns helpers to wait on deliveries."""
    cluster.ensure_running()
    _, key = source
    return Relay(Client(key, host=live_server.url, sync_mode=True, max_retries=0), sandbox)


class Relay:
    def __init__(self, client, sandbox):
        self.client = client
        self.sandbox = sandbox

    def deliveries(self, **filters):
        return Delivery.objects.filter(**filters).select_related("call").order_by("created_at", "pk")

    def wait_for_states(self, *states, timeout=30, **filters):
        def settled():
            found = list(self.deliveries(**filters).values_list("state", flat=True))
            return found if found and all(state in states for state in found) else None

        return wait_until(settled, timeout, message=f"deliveries {filters} to reach {states}")

    def wait_delivered(self, count, timeout=30):
        wait_until(
            lambda: Delivery.objects.filter(state=State.DELIVERED).count() >= count,
            timeout,
            message=f"{count} deliveries delivered (have {list(Delivery.objects.values_list('state', flat=True))})",
        )


def test_it_forwards_identify_track_group_and_page_to_intercom(relay):
    c = relay.client
    c.identify(
        "user-1",
        {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace", "plan": "pro", "logins": 3},
        timestamp=_at("2026-03-01T10:00:00Z"),
    )
    c.group("user-1", "org-9", {"name": "Initech", "plan": "business", "employees": 42, "region": "emea"})
    c.track(
        "user-1",
        "Order Completed",
        {"revenue": 19.99, "currency": "EUR", "items": 2},
        timestamp=_at("2026-03-01T10:05:00Z"),
    )
    c.page("user-1", "Docs", "Getting Started", {"url": "https://example.com/docs", "path": "/docs"})
    relay.wait_delivered(4)

    contact = relay.sandbox.state.contact_by_external_id("user-1")
    assert contact["email"] == "ada@example.com"
    assert contact["name"] == "Ada Lovelace"
    assert contact["role"] == "user"
    assert contact["custom_attributes"] == {"plan": "pro", "logins": 3}
    assert {a["name"] for a in relay.sandbox.state.data_attributes} >= {"plan", "logins", "region"}

    [company] = relay.sandbox.state.companies
    assert (company["company_id"], company["name"], company["plan"]["name"], company["size"]) == (
        "org-9",
        "Initech",
        "business",
        42,
    )
    assert company["custom_attributes"] == {"region": "emea"}
    assert relay.sandbox.state.attachments == [{"contact_id": contact["id"], "company_id": company["id"]}]

    order, page = relay.sandbox.state.events_for("user-1")
    assert order["event_name"] == "Order Completed"
    assert order["created_at"] == int(_at("2026-03-01T10:05:00Z").timestamp())
    assert order["metadata"] == {"price": {"amount": 1999, "currency": "EUR"}, "items": 2}
    assert page["event_name"] == "viewed-page"
    assert page["metadata"]["url"] == "https://example.com/docs"
    assert page["metadata"]["name"] == "Getting Started"
    assert Attempt.objects.filter(outcome=Outcome.DELIVERED).count() == 4


def test_it_delivers_a_track_sent_before_identify_after_it_in_order(relay):
    relay.client.track("late-user", "First Thing", {"n": 1})
    relay.client.track("late-user", "Second Thing", {"n": 2})
    relay.wait_for_states(State.WAITING, user_id="late-user")
    assert relay.sandbox.state.events_for("late-user") == []

    relay.client.identify("late-user", {"email": "late@example.com"})
    relay.wait_delivered(3)
    names = [e["event_name"] for e in relay.sandbox.state.events_for("late-user")]
    assert names == ["First Thing", "Second Thing"]
    posts = [r["path"] for r in relay.sandbox.requests if r["method"] == "POST" and r["status"] < 300]
    assert posts.index("/contacts") < posts.index("/events")


def test_it_attributes_an_anonymous_track_to_the_identify_that_links_it(relay):
    relay.client.track(anonymous_id="anon-7", event="Viewed Pricing")
    relay.wait_for_states(State.WAITING, anonymous_id="anon-7")

    relay.client.identify("known-7", {"email": "k7@example.com"}, anonymous_id="anon-7")
    relay.wait_delivered(2)
    [event] = relay.sandbox.state.events_for("known-7")
    assert event["event_name"] == "Viewed Pricing"
    assert relay.deliveries(anonymous_id="anon-7", call__type="track").get().user_id == "known-7"


def test_it_recovers_from_a_409_by_unarchiving_and_updating_the_existing_contact(relay):
    existing = relay.sandbox.state.add_contact(role="user", external_id="archived-1", email="old@example.com")
    relay.sandbox.state.archive_contact(existing["id"])

    relay.client.identify("archived-1", {"email": "new@example.com"})
    relay.wait_delivered(1)
    contact = relay.sandbox.state.contact_by_external_id("archived-1")
    assert (contact["id"], contact["email"], contact["archived"]) == (existing["id"], "new@example.com", False)
    statuses = [(r["method"], r["status"]) for r in relay.sandbox.requests_to(path="/contacts")]
    assert ("POST", 409) in statuses
    assert len(relay.sandbox.state.contacts) == 1


def test_it_recovers_from_a_409_when_search_has_not_caught_up(relay):
    relay.sandbox.configure(search_lag_seconds=60)
    existing = relay.sandbox.state.add_contact(role="user", external_id="fresh-1", email="f@example.com")

    relay.client.identify("fresh-1", {"name": "Fresh"})
    relay.wait_delivered(1)
    assert relay.sandbox.state.contact_by_external_id("fresh-1")["name"] == "Fresh"
    assert len(relay.sandbox.state.contacts) == 1
    assert Delivery.objects.get().call.user_id == "fresh-1"
    assert existing["id"] == relay.sandbox.state.contact_by_external_id("fresh-1")["id"]


def test_it_creates_an_unknown_attribute_before_writing_it(relay):
    relay.client.identify("attr-1", {"favourite_colour": "teal", "seats": 5, "trial": True})
    relay.wait_delivered(1)
    created = {a["name"]: a["data_type"] for a in relay.sandbox.state.data_attributes}
    assert created == {"favourite_colour": "string", "seats": "integer", "trial": "boolean"}
    assert relay.sandbox.state.contact_by_external_id("attr-1")["custom_attributes"] == {
        "favourite_colour": "teal",
        "seats": 5,
        "trial": True,
    }


def test_it_drops_an_attribute_intercom_refuses_with_a_warning(relay):
    relay.sandbox.configure(data_attribute_limit=0)
    relay.client.identify("attr-2", {"email": "a2@example.com", "nickname": "Ace"})
    relay.wait_delivered(1)
    contact = relay.sandbox.state.contact_by_external_id("attr-2")
    assert contact["email"] == "a2@example.com"
    assert contact["custom_attributes"] == {}
    delivery = Delivery.objects.get()
    assert any("nickname" in warning for warning in delivery.warnings)


def test_it_follows_a_429_without_spending_retries(relay):
    relay.client.identify("limited", {"email": "l@example.com"})
    relay.wait_delivered(1)
    relay.sandbox.fail_next(1, status=429, path="/events")
    relay.client.track("limited", "Rate Limited Once")
    relay.wait_delivered(2, timeout=40)
    delivery = relay.deliveries(call__event="Rate Limited Once").get()
    assert delivery.retry_count == 0
    outcomes = list(delivery.attempts.values_list("outcome", flat=True))
    assert outcomes == [Outcome.RATE_LIMITED, Outcome.DELIVERED]
    assert len(relay.sandbox.state.events_for("limited")) == 1


def test_it_keeps_under_the_rate_limit_the_headers_announce(relay):
    relay.sandbox.configure(rate_limit=8, rate_limit_window=3)
    relay.client.identify("busy", {"email": "busy@example.com"})
    for n in range(12):
        relay.client.track("busy", f"Busy {n % 3}", {"n": n}, timestamp=_at(f"2026-03-01T10:00:{n:02d}Z"))
    relay.wait_delivered(13, timeout=60)
    assert len(relay.sandbox.state.events_for("busy")) == 12
    assert Delivery.objects.filter(retry_count__gt=0).count() == 0
    # The shared limiter follows X-RateLimit-Remaining: Intercom rarely has to say 429.
    assert relay.sandbox.counters.get("status.429", 0) <= 2


@pytest.mark.parametrize("status", [500, 503])
def test_it_retries_server_errors_with_backoff(relay, status):
    relay.client.identify("flaky", {"email": "flaky@example.com"})
    relay.wait_delivered(1)
    relay.sandbox.fail_next(2, status=status, path="/events")
    relay.client.track("flaky", "Eventually")
    relay.wait_delivered(2, timeout=40)
    delivery = relay.deliveries(call__event="Eventually").get()
    attempts = list(delivery.attempts.order_by("started_at"))
    assert [a.outcome for a in attempts] == [Outcome.RETRY, Outcome.RETRY, Outcome.DELIVERED]
    assert [a.status for a in attempts] == [status, status, 202]
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= 0.7 for gap in gaps)  # the schedule's 1 s, less 20% jitter
    assert len(relay.sandbox.state.events_for("flaky")) == 1


def test_it_retries_a_timeout(relay):
    relay.client.identify("slow", {"email": "slow@example.com"})
    relay.wait_delivered(1)
    relay.sandbox.configure(slow_rate=1.0, slow_ms=3000)
    relay.client.track("slow", "Slowly")
    relay.wait_for_states(State.PENDING, State.DELIVERING, call__event="Slowly")
    wait_until(lambda: Attempt.objects.filter(outcome=Outcome.RETRY).exists(), 20, message="a timed-out attempt")
    relay.sandbox.configure(slow_rate=0.0)
    relay.wait_delivered(2, timeout=40)
    delivery = relay.deliveries(call__event="Slowly").get()
    assert delivery.attempts.first().error.startswith("timeout")
    assert len(relay.sandbox.state.events_for("slow")) == 1


def test_it_pauses_on_a_refused_token_and_recovers_without_loss(relay):
    relay.sandbox.configure(refuse_token=True)
    relay.client.identify("patient", {"email": "p@example.com"})
    relay.client.track("patient", "Waited For Token")
    wait_until(lambda: IntercomStatus.objects.filter(auth_failed_at__isnull=False).exists(), 20, message="auth banner")
    assert Delivery.objects.filter(state=State.FAILED).count() == 0
    relay.sandbox.configure(refuse_token=False)
    relay.wait_delivered(2, timeout=40)
    assert IntercomStatus.get().auth_failed_at is None
    assert [e["event_name"] for e in relay.sandbox.state.events_for("patient")] == ["Waited For Token"]
    assert Delivery.objects.filter(retry_count__gt=0).count() == 0


def test_it_fails_a_400_at_once(relay):
    relay.client.identify("bad", {"email": "bad@example.com"})
    relay.wait_delivered(1)
    relay.sandbox.fail_next(1, status=400, path="/events")
    relay.client.track("bad", "Rejected")
    relay.wait_for_states(State.FAILED, call__event="Rejected")
    delivery = relay.deliveries(call__event="Rejected").get()
    assert (delivery.attempt_count, delivery.last_status, delivery.error_cause) == (1, 400, "http_400")


def test_it_holds_an_event_when_intercom_answers_the_name_cap(relay):
    relay.sandbox.state.prefill_event_names([f"someone-else-{n}" for n in range(120)])
    relay.client.identify("capped", {"email": "c@example.com"})
    relay.client.track("capped", "One Too Many")
    relay.wait_for_states(State.HELD, call__event="One Too Many")
    delivery = relay.deliveries(call__event="One Too Many").get()
    assert (delivery.last_status, delivery.error_cause) == (422, "event_name_cap")
    assert relay.sandbox.state.events_for("capped") == []


def test_it_fails_a_waiting_call_when_no_identify_comes_in_time(relay, settings):
    relay.client.track("never-identified", "Lonely")
    relay.wait_for_states(State.WAITING, user_id="never-identified")
    settings.RELAY_WAIT_FOR_IDENTIFY = 1
    time.sleep(1.1)
    sweeper.sweep()  # the sweeper (this one, or the one running beside the test) fails it
    relay.wait_for_states(State.FAILED, user_id="never-identified")
    delivery = Delivery.objects.get()
    assert delivery.error_cause == "wait_expired"
    assert "RELAY_WAIT_FOR_IDENTIFY" in delivery.last_error


def test_it_resends_a_delivered_event_without_duplicating_it(relay):
    relay.client.identify("again", {"email": "again@example.com"})
    relay.client.track("again", "Only Once")
    relay.wait_delivered(2)
    delivery = relay.deliveries(call__event="Only Once").get()
    created_at = delivery.created_at

    assert services.resend(delivery)
    wait_until(lambda: delivery.attempts.count() == 2 and Delivery.objects.get(pk=delivery.pk).state == State.DELIVERED)
    assert len(relay.sandbox.state.events_for("again")) == 1
    assert relay.sandbox.counters["events.duplicate"] == 1
    delivery.refresh_from_db()
    assert delivery.created_at == created_at
    assert list(delivery.attempts.values_list("trigger", flat=True)) == ["auto", "manual"]


def test_it_completes_a_delivery_whose_worker_was_killed(relay, cluster, settings):
    relay.client.identify("survivor", {"email": "s@example.com"})
    relay.wait_delivered(1)
    relay.sandbox.configure(latency_ms=4000)
    relay.client.track("survivor", "Interrupted")
    relay.wait_for_states(State.DELIVERING, call__event="Interrupted")
    cluster.kill()
    relay.sandbox.configure(latency_ms=0)
    cluster.start()
    # The lease (15 s for the worker) expires; the sweeper returns it to pending and enqueues it.
    wait_until(lambda: sweeper.sweep()["leases_expired"], 30, interval=1, message="the lease to expire")
    relay.wait_delivered(2, timeout=40)
    assert len(relay.sandbox.state.events_for("survivor")) == 1
    delivery = relay.deliveries(call__event="Interrupted").get()
    assert delivery.state == State.DELIVERED


def _at(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
