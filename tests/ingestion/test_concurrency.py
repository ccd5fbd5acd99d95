"""Batches sent at once by several clients over the same event names: all stored, counted once
each, and none answered with an error. (On PostgreSQL, gunicorn under `make bench` once hit a
deadlock between two requests counting the same names; the names are now locked in id order
first. This test checks the outcome; it does not reproduce that interleaving on demand.)"""

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from forwarding.models import Call, Delivery, EventName
from tests.ingestion.conftest import basic

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
