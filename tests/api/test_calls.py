"""Calls and deliveries through the API: the log's filters, keyset pages (never a COUNT over
calls), one call with its attempts and exchanges, and resending one (409 when it cannot be)."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding.models import Call, Delivery, Source
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] if "id" in row else row["call_id"] for row in response.json()["results"]]


def test_calls_come_newest_first_with_their_delivery(viewer_api, calls):
    older = calls(state="failed", error_cause="http_400", last_status=400)
    newer = calls(event="Order Completed")
    body = viewer_api.get("calls/").json()
    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    assert body["next"] is None
    first = body["results"][0]
    assert first["event"] == "Order Completed" and first["source_name"] == "Website"
    assert first["delivery"]["state"] == "delivered" and "payload" not in first
    assert body["results"][1]["delivery"]["last_status"] == 400


def test_keyset_pages_follow_each_other_without_counting(viewer_api, calls):
    made = [calls() for _ in range(5)]
    expected = [call.pk for call in reversed(made)]
    seen, cursor = [], None
    with CaptureQueriesContext(connection) as captured:
        while True:
            body = viewer_api.get("calls/", {"limit": 2, **({"after": cursor} if cursor else {})}).json()
            seen += [row["id"] for row in body["results"]]
            cursor = body["next"]
            if cursor is None:
                break
    assert seen == expected
    assert not [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "forwarding_call" in q["sql"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "failed"}, ["failed"]),
        ({"type": "identify"}, ["identify"]),
        ({"event": "signed up"}, ["delivered"]),
        ({"user": "bob"}, ["bob"]),
        ({"q": "bob@example.com"}, ["bob"]),
        ({"warned": "1"}, ["warned"]),
    ],
)
def test_the_logs_filters_apply(viewer_api, calls, params, expected):
    calls(state="failed", event="Failed One")
    calls(type="identify", user_id="ida", event="")
    calls(event="Signed Up", state="delivered")
    calls(user_id="bob", email="bob@example.com", event="Other")
    calls(event="Warned", warned=True, state="skipped")
    rows = viewer_api.get("calls/", params).json()["results"]
    labels = {
        "failed": lambda r: r["delivery"]["state"] == "failed",
        "identify": lambda r: r["type"] == "identify",
        "delivered": lambda r: r["event"] == "Signed Up",
        "bob": lambda r: r["user_id"] == "bob",
        "warned": lambda r: r["event"] == "Warned",
    }
    assert rows and all(labels[expected[0]](row) for row in rows)
    assert len(rows) == 1


def test_since_and_until_bound_the_arrival_time(viewer_api, calls):
    now = timezone.now()
    calls(received_at=now - timedelta(days=3))
    recent = calls(received_at=now - timedelta(hours=1))
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert ids(viewer_api.get("calls/", {"since": since})) == [recent.pk]
    assert len(ids(viewer_api.get("calls/", {"until": since}))) == 1


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"state": "lost"}, "state: unknown value 'lost'"),
        ({"status": "999"}, "status"),
        ({"source": "abc"}, "source"),
        ({"since": "yesterday"}, "since"),
        ({"event": "x" * 300}, "event: longer than 255"),
        ({"q": "a\x00b"}, "q: contains a NUL"),
        ({"after": "not-a-cursor"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_bad_filters_are_a_400_naming_them(viewer_api, params, problem):
    for path in ("calls/", "deliveries/"):
        response = viewer_api.get(path, params)
        assert error_of(response) == (400, "invalid")
        assert problem in response.json()["message"]


def test_a_source_id_past_a_32_bit_integer_is_an_empty_page(viewer_api, calls):
    # PostgreSQL's source ids are 32-bit: Django builds no SQL for the filter (once a 500).
    calls(state="failed")
    for params in ({"event": "Signed Up"}, {"user": "u1"}, {}):
        for path in ("calls/", "deliveries/"):
            response = viewer_api.get(path, {**params, "source": str(2**31 + 7)})
            assert response.status_code == 200, (path, params)
            assert response.json()["results"] == []


def test_deliveries_list_the_same_pages_with_their_call(viewer_api, calls):
    made = [calls(state="failed") for _ in range(3)]
    body = viewer_api.get("deliveries/", {"state": "failed", "limit": 2}).json()
    assert [row["call_id"] for row in body["results"]] == [made[2].pk, made[1].pk]
    assert body["results"][0]["call"]["id"] == made[2].pk and body["results"][0]["state"] == "failed"
    rest = viewer_api.get("deliveries/", {"state": "failed", "limit": 2, "after": body["next"]}).json()
    assert [row["call_id"] for row in rest["results"]] == [made[0].pk] and rest["next"] is None


def test_one_call_with_its_attempts_and_exchanges(viewer_api, calls):
    call = calls(state="failed", attempt_count=2)
    calls.attempt(call, outcome="retry", status=503, exchanges=[("POST", "/events", 503, "{}", "busy")])
    calls.attempt(call, outcome="failed", status=400, exchanges=[("POST", "/events", 400, '{"a":1}', "bad")])
    body = viewer_api.get(f"calls/{call.pk}/").json()
    assert body["id"] == call.pk and body["payload"]["event"] == "Signed Up"
    assert body["delivery"]["state"] == "failed"
    assert [a["status"] for a in body["attempts"]] == [400, 503]  # newest first
    assert body["attempts"][0]["exchanges"][0]["response_body"] == "bad"
    assert body["attempts_not_shown"] == 0


def test_a_call_without_a_delivery_has_a_null_delivery(viewer_api):
    source = Source.create_with_key("Other")[0]
    now = timezone.now()
    call = Call.objects.create(source=source, message_id="m", type="track", timestamp=now, payload={})
    body = viewer_api.get(f"calls/{call.pk}/").json()
    assert body["delivery"] is None and body["attempts"] == []
    row = viewer_api.get("calls/").json()["results"][0]
    assert row["id"] == call.pk and row["delivery"] is None
    assert viewer_api.get("deliveries/").json()["results"] == []


@pytest.mark.parametrize("path", ["calls/424242/", "calls/424242/resend/", "calls/abc/", "calls/1234567890123456789/"])
def test_a_call_that_does_not_exist_is_a_404_json(operator_api, path):
    response = operator_api.post(path) if path.endswith("resend/") else operator_api.get(path)
    assert error_of(response)[0] == 404


def test_an_operator_resends_a_failed_call(operator_api, calls, operator):
    call = calls(state="failed")
    response = operator_api.post(f"calls/{call.pk}/resend/")
    assert response.status_code == 202
    assert response.json()["was"] == "failed" and response.json()["delivery"]["state"] == "pending"
    assert Delivery.objects.get(pk=call.pk).state == "pending"
    entry = LogEntry.objects.get()
    assert entry.user == operator and entry.object_id == str(call.pk)
    assert entry.change_message.startswith("Resent (was failed) (through the API, token rly_")


def test_a_call_without_payload_or_in_flight_is_a_409(operator_api, calls):
    expunged = calls(state="failed")
    Call.objects.filter(pk=expunged.pk).update(payload=None, payload_removed_at=timezone.now())
    in_flight = calls(state="delivering")
    assert error_of(operator_api.post(f"calls/{expunged.pk}/resend/")) == (409, "no_payload")
    assert error_of(operator_api.post(f"calls/{in_flight.pk}/resend/")) == (409, "in_flight")
    assert Delivery.objects.get(pk=in_flight.pk).state == "delivering"
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("params", [{}, {"state": "failed"}, {"user": "ada"}])
def test_a_page_costs_the_same_queries_whatever_its_size(viewer_api, calls, params):
    def queries_of_a_page():
        with CaptureQueriesContext(connection) as captured:
            for path in ("calls/", "deliveries/"):
                assert viewer_api.get(path, params).status_code == 200
        return len(captured)

    calls(state="failed")
    queries_of_a_page()  # the token's first use notes it
    few = queries_of_a_page()
    for _ in range(6):
        calls(state="failed")
    assert queries_of_a_page() == few
