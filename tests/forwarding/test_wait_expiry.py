"""Waits past RELAY_WAIT_FOR_IDENTIFY are failed in slices, each its own short transaction: a
week of anonymous visitors is a million waiting calls, and one UPDATE over all of them held
SQLite's write lock (ingestion stalled behind it) for as long as it ran (bench/anonymous.py)."""

import contextlib
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding.delivery import sweeper
from forwarding.models import Delivery, State
from tests.forwarding.locks import Holder

WEEK = 7 * 24 * 3600


@pytest.fixture
def waits(make_call, settings):
    """waits(count, age): `count` anonymous calls waiting for an identify since `age` ago."""
    settings.RELAY_WAIT_FOR_IDENTIFY = WEEK

    def make(count, age):
        received_at = timezone.now() - age
        calls = [make_call(type="page", user_id="", state="waiting", received_at=received_at) for _ in range(count)]
        return [call.pk for call in calls]

    return make


@contextlib.contextmanager
def delivery_updates():
    """The number of rows each UPDATE of the deliveries changed, in order."""
    rows = []

    def count(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "forwarding_delivery"'):
            rows.append(context["cursor"].rowcount)
        return result

    with connection.execute_wrapper(count):
        yield rows


def test_it_fails_the_waits_past_the_limit_a_slice_per_update(waits):
    expired = waits(25, timedelta(days=8))
    recent = waits(3, timedelta(days=6))
    with delivery_updates() as rows:
        assert sweeper.expire_waits(timezone.now(), slice_size=10) == 25
    assert rows == [10, 10, 5]
    assert set(Delivery.objects.filter(pk__in=expired).values_list("state", "error_cause")) == {
        (State.FAILED, "wait_expired")
    }
    assert set(Delivery.objects.filter(pk__in=recent).values_list("state", flat=True)) == {State.WAITING}


def test_it_fails_the_oldest_first_and_leaves_the_rest_to_the_next_sweep_when_out_of_time(waits):
    oldest = waits(10, timedelta(days=9))
    newer = waits(10, timedelta(days=8))
    assert sweeper.expire_waits(timezone.now(), slice_size=10, budget=0) == 10
    assert not Delivery.objects.filter(pk__in=oldest, state=State.WAITING).exists()
    assert Delivery.objects.filter(pk__in=newer, state=State.WAITING).count() == 10
    assert sweeper.expire_waits(timezone.now(), slice_size=10, budget=0) == 10
    assert sweeper.expire_waits(timezone.now(), slice_size=10, budget=0) == 0


def test_a_sweep_counts_the_waits_it_expired(waits):
    waits(3, timedelta(days=8))
    with delivery_updates() as rows:
        assert sweeper.sweep()["waits_expired"] == 3
    assert max(rows) <= sweeper.EXPIRE_SLICE


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL (DATABASE_URL)")
def test_it_skips_a_wait_another_transaction_holds_and_fails_it_later(waits):
    held, free = waits(2, timedelta(days=8))
    holder = Holder(held)
    holder.start()
    assert holder.locked.wait(10)
    try:
        started = time.monotonic()
        assert sweeper.expire_waits(timezone.now(), slice_size=10) == 1
        assert time.monotonic() - started < 5  # not waiting for the lock
    finally:
        holder.release.set()
        holder.join(10)
    assert Delivery.objects.get(pk=free).state == State.FAILED
    assert sweeper.expire_waits(timezone.now(), slice_size=10) == 1
    assert Delivery.objects.get(pk=held).state == State.FAILED


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plan")
def test_each_slice_updates_its_rows_by_primary_key_not_by_a_scan_of_the_waiting(waits):
    waits(3, timedelta(days=8))
    with CaptureQueriesContext(connection) as captured:
        sweeper.expire_waits(timezone.now())
    [update] = [query["sql"] for query in captured if query["sql"].startswith('UPDATE "forwarding_delivery"')]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {update}")
        plan = " ".join(row[-1] for row in cursor.fetchall())
    assert "sqlite_autoindex_forwarding_delivery_1 (call_id=?)" in plan, plan
