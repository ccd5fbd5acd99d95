"""/metrics: off unless a token or an allowlist is set, refused without them, and figures that
match the stored data, read in a bounded number of indexed queries whatever is stored."""

import json
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from forwarding import intercom, metric_values
from forwarding.delivery import connection
from forwarding.ingestion.rejections import SUMMARY_CODE
from forwarding.models import (
    Attempt,
    DataAttribute,
    Delivery,
    EventName,
    Exchange,
    IntercomStatus,
    RateLimitWindow,
    RejectedMessage,
)

pytestmark = pytest.mark.django_db

TOKEN = "a-metrics-token-for-the-tests"
MAX_QUERIES = 16


@pytest.fixture
def token(settings):
    settings.RELAY_METRICS_TOKEN = TOKEN
    settings.RELAY_METRICS_ALLOW = ""
    return TOKEN


def scrape(client, token=TOKEN, **extra):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def families(response):
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def value(found, name, **labels):
    """The value of the sample `name` (a family's, or one of a histogram's series) with these labels."""
    family_name = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
    for sample in found[family_name].samples:
        if sample.name == name and sample.labels == labels:
            return sample.value
    raise AssertionError(f"no sample {name}{labels}: {found[family_name].samples}")


# -- access --------------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_or_an_allowlist(client, settings):
    settings.RELAY_METRICS_TOKEN = ""
    settings.RELAY_METRICS_ALLOW = ""
    assert client.get("/metrics").status_code == 404
    assert scrape(client).status_code == 404


def test_a_missing_or_wrong_token_is_refused(client, token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert scrape(client, "not-the-token").status_code == 401
    assert scrape(client, TOKEN + "x").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_the_token_opens_the_metrics_in_prometheus_text_format(client, token):
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    assert "relay_deliveries" in families(response)
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_the_allowlist_is_checked_against_remote_addr(client, settings):
    settings.RELAY_METRICS_TOKEN = ""
    settings.RELAY_METRICS_ALLOW = "10.0.0.0/8, 192.0.2.7, not-an-address, 2001:db8::/32"
    for allowed in ("10.1.2.3", "192.0.2.7", "2001:db8::1"):
        assert client.get("/metrics", REMOTE_ADDR=allowed).status_code == 200, allowed
    for refused in ("192.0.2.8", "127.0.0.1", "::1", "garbage"):
        assert client.get("/metrics", REMOTE_ADDR=refused).status_code == 403, refused
    # The address is the connection's, never a header the client writes.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 403


def test_with_both_set_a_scrape_needs_both(client, settings):
    settings.RELAY_METRICS_TOKEN = TOKEN
    settings.RELAY_METRICS_ALLOW = "10.0.0.0/8"
    assert scrape(client, REMOTE_ADDR="10.0.0.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 401
    assert scrape(client, REMOTE_ADDR="192.0.2.1").status_code == 403


# -- values --------------------------------------------------------------------------------------


def attempt(delivery, outcome, status, started_at, durations=(), error=""):
    row = Attempt.objects.create(delivery=delivery, outcome=outcome, status=status, started_at=started_at, error=error)
    for answer, duration_ms in durations:
        Exchange.objects.create(attempt=row, method="POST", path="/events", status=answer, duration_ms=duration_ms)
    return row


@pytest.fixture
def stored(make_call):
    """Deliveries in several states, attempts and their exchanges, Intercom's status and limits,
    event names, data attributes and rejected messages."""
    now = timezone.now()
    calls = {}
    for n, state in enumerate(["delivered"] * 3 + ["failed"] * 2 + ["pending"] * 2 + ["waiting", "held"]):
        calls[f"{state}{n}"] = make_call(state=state, user_id=f"u{n}")
    pending = [c.delivery for key, c in calls.items() if key.startswith("pending")]
    Delivery.objects.filter(pk=pending[0].pk).update(next_attempt_at=now - timedelta(minutes=10))
    Delivery.objects.filter(pk=pending[1].pk).update(next_attempt_at=now + timedelta(minutes=10))
    delivery = calls["delivered0"].delivery
    old = attempt(delivery, "delivered", 202, now - timedelta(hours=2), [(202, 30)])
    attempt(delivery, "delivered", 202, now - timedelta(minutes=5), [(200, 40), (202, 60)])
    attempt(delivery, "delivered", 202, now - timedelta(minutes=4), [(202, 300)])
    attempt(delivery, "retry", 503, now - timedelta(minutes=3), [(503, 1200)])
    attempt(delivery, "retry", None, now - timedelta(minutes=2), [(None, 20000)], error="timeout after 20 s")
    attempt(delivery, "failed", 400, now - timedelta(minutes=1), [(400, 90)])
    attempt(delivery, "", None, now)  # running: no outcome yet
    IntercomStatus.objects.create(
        name="intercom",
        config_key=connection.config_key(),
        base_url=intercom.base_url(),
        workspace_id="ws1",
        last_success_at=now - timedelta(minutes=6),
        unreachable_since=now - timedelta(minutes=5),
        failures=4,
    )
    RateLimitWindow.objects.create(name="intercom", limit=166, remaining=42, reset_at=now + timedelta(seconds=5))
    for name, held in [("Signed Up", 0), ("Paid", 2), ("Viewed", 0)]:
        EventName.objects.create(key=name.lower(), name=name, slot_used_at=now, held_count=held)
    EventName.objects.create(key="no slot", name="No slot")
    for model, name, fields in [
        ("contact", "plan", {}),
        ("contact", "tier", {}),
        ("contact", "seats", {"alias": "contact_seats"}),  # written under an alias: not an attribute
        ("contact", "bad", {"usable": False, "refusal": "invalid_name"}),
        ("company", "size", {}),
    ]:
        DataAttribute.objects.create(workspace="ws1", model=model, name=name, **fields)
    DataAttribute.objects.create(workspace="other", model="contact", name="plan")
    for code, at in [("invalid_type", now), ("invalid_type", now), ("missing_id", now - timedelta(hours=2))]:
        RejectedMessage.objects.create(code=code, reason="r", received_at=at)
    summary = {"rejected": 8, "by_code": {"invalid_type": 5, "missing_id": 3}}
    RejectedMessage.objects.create(code=SUMMARY_CODE, reason="r", received_at=now, excerpt=json.dumps(summary))
    return {"now": now, "old_attempt": old}


def test_the_figures_match_the_stored_data(client, token, stored):
    found = families(scrape(client))
    states = {"delivered": 3, "failed": 2, "pending": 2, "waiting": 1, "held": 1, "suppressed": 0, "skipped": 0}
    for state, n in states.items():
        assert value(found, "relay_deliveries", state=state) == n, state
    assert value(found, "relay_ingest_accepted_calls", hour="current") == 9
    assert value(found, "relay_ingest_rejected_messages", code="invalid_type") == 2 + 5
    assert value(found, "relay_ingest_rejected_messages", code="missing_id") == 3  # the row of 2 h ago left out
    assert value(found, "relay_backlog_due") == 1
    assert 595 <= value(found, "relay_backlog_oldest_due_seconds") <= 700

    assert value(found, "relay_attempts_recent", outcome="delivered", cause="none") == 2  # not the one of 2 h ago
    assert value(found, "relay_attempts_recent", outcome="retry", cause="http_503") == 1
    assert value(found, "relay_attempts_recent", outcome="retry", cause="timeout") == 1
    assert value(found, "relay_attempts_recent", outcome="failed", cause="http_400") == 1
    assert value(found, "relay_attempts_recent_window_seconds") == 15 * 60

    for status, n in [("200", 1), ("202", 2), ("503", 1), ("400", 1), ("none", 1)]:
        assert value(found, "relay_intercom_requests_recent", status=status) == n, status
    histogram = "relay_intercom_request_duration_seconds"
    assert value(found, f"{histogram}_count") == 6
    assert value(found, f"{histogram}_sum") == pytest.approx((40 + 60 + 300 + 1200 + 20000 + 90) / 1000)
    assert value(found, f"{histogram}_bucket", le="0.05") == 1
    assert value(found, f"{histogram}_bucket", le="0.1") == 3
    assert value(found, f"{histogram}_bucket", le="2.5") == 5
    assert value(found, f"{histogram}_bucket", le="20.0") == 6
    assert value(found, f"{histogram}_bucket", le="+Inf") == 6

    assert value(found, "relay_intercom_up") == 0
    assert value(found, "relay_intercom_auth_failed") == 0
    assert 295 <= value(found, "relay_intercom_unreachable_seconds") <= 400
    assert value(found, "relay_intercom_consecutive_failures") == 4
    assert value(found, "relay_intercom_rate_limit_remaining") == 42
    assert value(found, "relay_intercom_rate_limit_limit") == 166
    assert 0 < value(found, "relay_intercom_rate_limit_reset_seconds") <= 5

    assert value(found, "relay_event_name_slots_used") == 3
    assert value(found, "relay_event_name_slots_limit") == 120
    assert value(found, "relay_event_names_held") == 1
    assert value(found, "relay_data_attribute_slots_used", model="contact") == 2
    assert value(found, "relay_data_attribute_slots_used", model="company") == 1
    assert value(found, "relay_data_attribute_slots_limit") == 250


def test_intercom_up_while_the_last_request_succeeded(client, token, stored):
    IntercomStatus.objects.filter(name="intercom").update(unreachable_since=None, failures=0)
    found = families(scrape(client))
    assert value(found, "relay_intercom_up") == 1
    assert value(found, "relay_intercom_unreachable_seconds") == 0
    IntercomStatus.objects.filter(name="intercom").update(auth_failed_at=timezone.now(), auth_error="401")
    found = families(scrape(client))
    assert value(found, "relay_intercom_up") == 0
    assert value(found, "relay_intercom_auth_failed") == 1


def test_an_empty_database_scrapes(client, token):
    found = families(scrape(client))
    assert value(found, "relay_backlog_due") == 0
    assert value(found, "relay_intercom_up") == 0
    assert value(found, "relay_intercom_request_duration_seconds_count") == 0
    assert "relay_intercom_rate_limit_remaining" not in found


def test_the_attempt_window_is_the_newest_ids_at_most(stored):
    now = timezone.now()
    everything = metric_values.attempts(now)
    assert everything.total == 5 and everything.failed == 3
    cut = metric_values.attempts(now, scanned=3)  # the newest 3 ids: one running, the failed and the timeout
    assert cut.total == 2
    assert cut.window_seconds < 15 * 60
    assert cut.first_pk > stored["old_attempt"].pk


# -- cost ----------------------------------------------------------------------------------------


def more_calls(make_call, count):
    now = timezone.now()
    for n in range(count):
        call = make_call(state="delivered" if n % 3 else "failed", user_id=f"more-{n}")
        attempt(call.delivery, "delivered" if n % 3 else "failed", 202 if n % 3 else 400, now, [(202, 50)])


def test_a_scrape_costs_a_bounded_number_of_queries_whatever_is_stored(
    client, token, stored, make_call, django_assert_max_num_queries
):
    with django_assert_max_num_queries(MAX_QUERIES), CaptureQueriesContext(db_connection) as few:
        families(scrape(client))
    more_calls(make_call, 200)
    with django_assert_max_num_queries(MAX_QUERIES), CaptureQueriesContext(db_connection) as many:
        families(scrape(client))
    assert len(many) == len(few)


def test_no_query_counts_the_calls_or_every_delivery(client, token, stored):
    with CaptureQueriesContext(db_connection) as captured:
        families(scrape(client))
    for query in captured:
        sql = query["sql"].upper()
        assert 'FROM "FORWARDING_CALL"' not in sql, sql
        if 'FROM "FORWARDING_DELIVERY"' in sql and "COUNT(" in sql:
            assert "LIMIT" in sql, sql  # the backlog, counted under a LIMIT


@pytest.mark.skipif(db_connection.vendor != "sqlite", reason="reads SQLite's plans")
def test_every_query_of_a_scrape_reads_an_index(client, token, stored):
    with CaptureQueriesContext(db_connection) as captured:
        families(scrape(client))
    big = (
        "forwarding_delivery",
        "forwarding_attempt",
        "forwarding_exchange",
        "forwarding_call",
        "forwarding_deliverytally",
    )
    with db_connection.cursor() as cursor:
        for query in captured:
            cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
            plan = [str(row[-1]) for row in cursor.fetchall()]
            # A bare "SCAN <table>" reads the rows in id order: only under a LIMIT (the newest
            # attempts by id), never sorted afterwards. SEARCH, or a scan of an index, is bounded.
            bare = [step for step in plan for table in big if step == f"SCAN {table}"]
            if bare:
                assert "LIMIT" in query["sql"] and not any("TEMP B-TREE" in step for step in plan), (query, plan)
