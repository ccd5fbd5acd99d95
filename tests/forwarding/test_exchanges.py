"""What an operator finds of each HTTP exchange: a failure whole (headers, both bodies), a success
with the request Intercom received, the answer's rate-limit headers and what identifies it."""

import json

import pytest

from forwarding.delivery import loop
from forwarding.delivery.exchanges import exchange_fields, summary
from forwarding.intercom import Response
from forwarding.models import Call, Delivery, Exchange

pytestmark = pytest.mark.django_db

CLIENT_HEADERS = {"Intercom-Version": "2.16", "Content-Type": "application/json", "Accept": "application/json"}
RATE_HEADERS = {"X-RateLimit-Limit": "10000", "X-RateLimit-Remaining": "9999", "X-RateLimit-Reset": "1700000060"}


def identify(user_id):
    return {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com", "plan": "pro"}}


def exchanges_of(pk):
    return list(Exchange.objects.filter(attempt__delivery_id=pk).order_by("id"))


def test_a_delivered_identify_keeps_the_request_and_only_what_identifies_the_answer(store, sandbox, one_worker):
    (pk,) = store(identify("ada"))
    loop.deliver_many([pk])

    assert Delivery.objects.get(pk=pk).state == "delivered"
    created = next(e for e in exchanges_of(pk) if (e.method, e.path) == ("POST", "/contacts"))
    # What Intercom received, whole.
    assert json.loads(created.request_body)["email"] == "ada@example.com"
    # Of the contact it answered: its type and id, not its data (the email, the attributes...).
    answer = json.loads(created.response_body)
    assert answer == {"type": "contact", "id": answer["id"], "external_id": "ada"}
    assert "ada@example.com" not in created.response_body
    assert created.request_headers == {}  # the client's own, the same on every request: see a failure
    assert "Content-Type" not in created.response_headers
    assert created.response_headers == {}  # a failure keeps them
    assert "Authorization" not in json.dumps([created.request_headers, created.response_headers])


def test_a_failed_exchange_keeps_its_headers_and_both_bodies(store, sandbox, one_worker):
    loop.deliver_many(store(identify("bob")))
    (pk,) = store({"type": "track", "userId": "bob", "event": "Bought"})
    sandbox.fail_next(1, status=400, path="/events")
    loop.deliver_many([pk])

    (failed,) = [e for e in exchanges_of(pk) if e.status == 400]
    assert failed.request_headers == CLIENT_HEADERS
    assert failed.response_headers["Content-Type"].startswith("application/json")
    assert json.loads(failed.response_body)["errors"]  # Intercom's error envelope, whole
    assert json.loads(failed.request_body)["event_name"] == "Bought"


def test_the_stored_payload_is_compact_json():
    # SQLite keeps JSON as text: no space after `,` and `:`.
    field = Call._meta.get_field("payload")
    assert json.dumps({"a": [1, 2], "b": "c d"}, cls=field.encoder) == '{"a":[1,2],"b":"c d"}'


def test_a_network_error_is_kept_whole():
    response = Response("POST", "/events", {"event_name": "Bought"}, error="timeout: ReadTimeoutError")
    fields = exchange_fields(response, CLIENT_HEADERS)
    assert (fields["status"], fields["error"]) == (None, "timeout: ReadTimeoutError")
    assert fields["request_headers"] == CLIENT_HEADERS
    assert json.loads(fields["request_body"]) == {"event_name": "Bought"}


def test_a_success_keeps_the_rate_limit_and_request_id_headers():
    headers = {"Content-Type": "application/json", "X-Request-Id": "req-1", **RATE_HEADERS}
    response = Response("POST", "/events", {"event_name": "Bought"}, status=202, headers=headers)
    fields = exchange_fields(response, CLIENT_HEADERS)
    assert fields["response_headers"] == {}  # the rate limit is the limiter's; a failure keeps them all
    assert fields["response_body"] == ""  # Intercom answers /events with no body


def test_a_successful_answer_is_summarised_by_type_id_and_count():
    contact = {"type": "contact", "id": "c-1", "external_id": "ada", "email": "ada@example.com", "name": "Ada"}
    listing = {"type": "list", "total_count": 7, "data": [contact] * 7, "pages": {"next": None}}
    assert summary(contact) == {"type": "contact", "id": "c-1", "external_id": "ada"}
    assert summary(listing) == {"type": "list", "total_count": 7, "data": [summary(contact)] * 5}
    assert summary("<html>proxy</html>") == "<html>proxy</html>"  # unexpected text: kept
    assert summary(None) is None
