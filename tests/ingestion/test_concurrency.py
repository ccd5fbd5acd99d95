"""Requests at once. Batches sent by several clients over the same event names: all stored, counted
once each, and none answered with an error. (On PostgreSQL, gunicorn under `make bench` once hit a
deadlock between two requests counting the same names; the names are now locked in id order
first. This test checks the outcome; it does not reproduce that interleaving on demand.) Batches
with rejected messages sent at once to a live server: the per-minute cap on their rows holds."""

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.test import Client

from forwarding.models import Call, Delivery, EventName, EventNameHour, Source
from tests.ingestion.conftest import basic, message
from tests.ingestion.test_floods import per_minute

NAMES = [f"Name {n:02d}" for n in range(20)]
CLIENTS = 8
BATCHES = 10
CALLS = 40


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_names_are_all_stored_and_counted(source):
    _, key = source

    def send(client_number):
        client = Client(HTTP_AUTHORIZATION=basic(key))
        rng = random.Random(client_number)
        statuses = []
        try:
            for batch in range(BATCHES):
                names = rng.sample(NAMES, len(NAMES))  # each batch meets the names in its own order
                messages = [
                    {
                        "type": "track",
                        "userId": f"user-{client_number}",
                        "event": names[n % len(names)],
                        "messageId": f"c{client_number}-b{batch}-{n}",
                    }
                    for n in range(CALLS)
                ]
                body = json.dumps({"batch": messages})
                statuses.append(client.post("/v1/batch", body, content_type="application/json").status_code)
        finally:
            connection.close()  # this thread's connection
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [status for result in pool.map(send, range(CLIENTS)) for status in result]

    total = CLIENTS * BATCHES * CALLS
    assert statuses == [200] * CLIENTS * BATCHES
    assert Call.objects.count() == Delivery.objects.count() == total
    assert sum(EventName.objects.values_list("total_count", flat=True)) == total
    assert sorted(EventName.objects.values_list("name", flat=True)) == NAMES


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_rejections_stay_within_the_cap(live_server, settings):
    # Threads of the live server, each with its own database connection, store at once.
    settings.RELAY_MAX_REJECTED_PER_MINUTE = 20
    source, key = Source.create_with_key("Flood")
    headers = {"Authorization": basic(key), "Content-Type": "application/json"}
    # Each round of requests leaves together, so that their transactions overlap.
    start = threading.Barrier(CLIENTS)

    def send(client_number):
        statuses = []
        for request in range(4):
            # Only rejections: a valid track would lock its event name's row, serialising the requests.
            batch = [message(messageId=f"c{client_number}-r{request}-{n}", event="") for n in range(25)]
            start.wait(timeout=60)
            response = requests.post(f"{live_server.url}/v1/batch", json={"batch": batch}, headers=headers, timeout=60)
            statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [status for result in pool.map(send, range(CLIENTS)) for status in result]

    assert statuses == [200] * CLIENTS * 4
    minutes = per_minute(source)
    # Every rejection is stored or counted, once; per minute at most 20 rows one by one and one summary.
    assert sum(stored + counted for stored, counted, _ in minutes.values()) == CLIENTS * 4 * 25
    for stored, _, summaries in minutes.values():
        assert stored <= 20 and summaries <= 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_calls_over_the_same_names_are_each_counted_once(live_server):
    """Websites' single calls, from several clients at once through a live server whose threads
    each count the names they remember (the first sight of a name takes the long way)."""
    source, key = Source.create_with_key("Singles")
    headers = {"Authorization": basic(key), "Content-Type": "text/plain"}
    names = NAMES[:4]
    per_client = 30

    def send(client_number):
        session = requests.Session()
        statuses = []
        for n in range(per_client):
            body = message(messageId=f"s{client_number}-{n}", event=names[(client_number + n) % len(names)])
            statuses.append(
                session.post(f"{live_server.url}/v1/t", data=json.dumps(body), headers=headers, timeout=60).status_code
            )
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [status for result in pool.map(send, range(CLIENTS)) for status in result]

    total = CLIENTS * per_client
    assert statuses == [200] * total
    assert Call.objects.count() == Delivery.objects.count() == total
    counted = dict(EventName.objects.values_list("name", "total_count"))
    assert counted == {name: total // len(names) for name in names}
    assert sum(EventNameHour.objects.values_list("count", flat=True)) == total
