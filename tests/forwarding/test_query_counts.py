"""Statement budgets of the two paths websites hit most: one browser call accepted, and one
identify delivered that releases the user's waiting anonymous calls. A change that adds a
statement per call fails here before it shows in `make bench`."""

import base64
import json

import pytest

from forwarding.delivery import loop
from forwarding.models import Delivery, State

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_worker")]
# Source, ingestion window (on SQLite read before the body, counted in the transaction that
# stores the call: one write lock taken, not two), savepoint, dedup lookup, call, event name
# known to the process (counts, hour), suppressed users, delivery, release.
TRACK_REQUEST = 11
# One task: claim, calls, event names, rules' version, workspace, contacts, attempts begun, GET
# and create the contact (exchange, attempt, delivery, link), release, hand on; bounded whatever
# the number of waiting calls.
IDENTIFY_RELEASING = 45  # 35 to 41 measured, the first in a process reading more caches


def post(client, key, path, message):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return client.post(path, json.dumps(message), content_type="application/json", HTTP_AUTHORIZATION=auth)


def test_one_track_request_costs_a_bounded_number_of_statements(client, source, django_assert_max_num_queries):
    _, key = source
    post(client, key, "/v1/track", {"userId": "u0", "event": "Signed Up"})  # the event name is known
    with django_assert_max_num_queries(TRACK_REQUEST):
        response = post(client, key, "/v1/t", {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}})
    assert response.status_code == 200


@pytest.mark.parametrize("waiting", [5, 50])
def test_an_identify_releasing_waiting_calls_costs_the_same_whatever_their_number(
    client, source, sandbox, waiting, django_assert_max_num_queries, monkeypatch
):
    _, key = source
    for n in range(waiting):
        post(client, key, "/v1/page", {"anonymousId": "anon-1", "name": f"Page {n}"})
    loop.deliver_many(list(Delivery.objects.values_list("pk", flat=True)))
    assert Delivery.objects.filter(state=State.WAITING).count() == waiting
    post(client, key, "/v1/identify", {"userId": "ann", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}})
    identify = Delivery.objects.get(call__type="identify")

    with django_assert_max_num_queries(IDENTIFY_RELEASING), monkeypatch.context() as patch:
        patch.setattr(loop, "CARRY_ON_SECONDS", 0)  # the calls released are the next tasks' (or `carry_on`'s)
        loop.deliver_many([identify.pk])

    assert Delivery.objects.filter(state=State.PENDING, user_id="ann").count() == waiting
