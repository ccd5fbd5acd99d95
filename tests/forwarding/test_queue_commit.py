"""A call's task appears on the queue when its call commits, never before and never without it:
with django-q2's ORM broker the task row is written in the ingestion's own transaction (on SQLite
one write lock per request instead of two); with another broker it is sent once committed."""

import os

import pytest
from django.db import transaction
from django_q.brokers.orm import ORM
from django_q.models import OrmQ

from forwarding.delivery import queue
from forwarding.models import Call, Delivery
from tests.forwarding.ingest import post_batch

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


@pytest.fixture
def orm_broker(monkeypatch):
    monkeypatch.setattr(queue, "_broker", (os.getpid(), ORM(list_key="relay-test")))


def track(user_id):
    return {"type": "track", "userId": user_id, "event": "Signed Up"}


def queued_deliveries():
    return sorted(pk for task in OrmQ.objects.all() for pk in task.task["args"][0])


def test_with_the_orm_broker_the_task_is_written_in_the_calls_transaction(client, source, orm_broker):
    with pytest.raises(Rollback), transaction.atomic():
        post_batch(client, source[1], [track("ann"), track("bob")])
        # Inside the transaction that stored the calls, their task is already there...
        assert queued_deliveries() == sorted(Delivery.objects.values_list("pk", flat=True))
        raise Rollback
    # ...and it goes with them.
    assert (Call.objects.count(), OrmQ.objects.count()) == (0, 0)

    post_batch(client, source[1], [track("cy")])
    assert queued_deliveries() == [Delivery.objects.get().pk]


def test_with_another_broker_the_task_is_sent_once_committed(client, source, monkeypatch):
    sent = []
    monkeypatch.setattr(queue, "in_the_database", lambda broker=None: False)
    monkeypatch.setattr(queue, "enqueue", lambda pks: sent.append((list(pks), Delivery.objects.count())))
    with pytest.raises(Rollback), transaction.atomic():
        post_batch(client, source[1], [track("ann")])
        assert sent == []  # not before the commit
        raise Rollback
    assert sent == []  # and never for calls that were not stored

    post_batch(client, source[1], [track("bob")])
    assert sent == [([Delivery.objects.get().pk], 1)]
