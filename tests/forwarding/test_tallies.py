"""The overview's tallies: database triggers count every delivery by the hour it was received and
its state now, whichever way the state changes; folding sums them and forgets old hours."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding import tallies
from forwarding.models import Delivery, DeliveryTally, State

pytestmark = pytest.mark.django_db


def tallied():
    """{(hour, state): deliveries} as the tallies say, zeros left out."""
    sums = Counter()
    for row in DeliveryTally.objects.all():
        sums[(row.hour, row.state)] += row.change
    return {key: n for key, n in sums.items() if n}


def counted():
    """The same, counted from the deliveries themselves."""
    rows = Delivery.objects.annotate(hour=TruncHour("created_at")).values("hour", "state").annotate(n=Count("pk"))
    return {(row["hour"], row["state"]): row["n"] for row in rows}


def hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def test_every_way_of_changing_a_state_is_counted_and_folding_keeps_the_sums(make_call):
    now = timezone.now()
    yesterday = now - timedelta(hours=30)
    first, _ = make_call(state="pending", received_at=now), make_call(state="pending", received_at=now)
    old = make_call(received_at=yesterday)
    Delivery.objects.filter(pk=first.pk).update(state=State.DELIVERED)  # one row
    Delivery.objects.filter(state=State.PENDING).update(state=State.WAITING)  # in bulk
    delivery = Delivery.objects.get(pk=old.pk)  # a whole-row save, and one that changes nothing
    delivery.state = State.FAILED
    delivery.save()
    delivery.save()

    expected = {(hour(now), State.DELIVERED): 1, (hour(now), State.WAITING): 1, (hour(yesterday), State.FAILED): 1}
    assert tallied() == counted() == expected
    assert DeliveryTally.objects.count() > 3

    tallies.fold(now, chunk=2)  # in chunks, as with a large backlog of rows
    assert tallied() == expected
    tallies.fold(now)
    assert tallied() == expected
    assert DeliveryTally.objects.count() == 3

    tallies.fold(now + timedelta(days=8, hours=-2))  # yesterday is now past what the overview shows
    assert tallied() == {(hour(now), State.DELIVERED): 1, (hour(now), State.WAITING): 1}


def test_the_migration_tallies_the_deliveries_stored_before_it(make_call):
    now = timezone.now()
    for n, state in enumerate([State.DELIVERED, State.DELIVERED, State.FAILED, State.HELD]):
        make_call(state=state, received_at=now - timedelta(hours=n))
    DeliveryTally.objects.all().delete()
    with connection.cursor() as cursor:
        tallies.tally_stored(cursor, connection.vendor)
    assert tallied() == counted()
    assert DeliveryTally.objects.count() == 4


def test_folding_touches_only_the_hours_and_states_that_changed(make_call):
    now = timezone.now()
    for n in range(24):
        make_call(state=State.DELIVERED, received_at=now - timedelta(hours=n))
    tallies.fold(now)
    assert DeliveryTally.objects.count() == 24
    with CaptureQueriesContext(connection) as nothing_new:
        assert tallies.fold(now) == 0
    assert not [
        q
        for q in nothing_new
        if "INSERT" in q["sql"] or q["sql"].startswith("DELETE FROM forwarding_deliverytally WHERE id")
    ]
    make_call(state=State.FAILED, received_at=now)
    make_call(state=State.FAILED, received_at=now)
    with CaptureQueriesContext(connection) as one_pair:
        assert tallies.fold(now) == 2
    inserts = [q for q in one_pair if "INSERT" in q["sql"]]
    assert len(inserts) == 1  # the new pair's sum; the 24 others are left as they are
    assert tallied() == counted()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_a_fold_does_not_wait_for_another_fold(make_call):
    """The schedule's sweep and an operator's can fold at once; the second must not queue behind
    the first's row locks (a fold in a worker killed mid-transaction can hold them a long time)."""
    now = timezone.now()
    make_call(state=State.DELIVERED, received_at=now)
    make_call(state=State.DELIVERED, received_at=now)
    locked, release = threading.Event(), threading.Event()

    def other_fold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                assert tallies.fold_lock(cursor)
                cursor.execute("SELECT id FROM forwarding_deliverytally FOR UPDATE")  # as its DELETE would
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    other = threading.Thread(target=other_fold, daemon=True)
    other.start()
    assert locked.wait(10)
    try:
        started = time.monotonic()
        assert tallies.fold(now) == 0
        assert time.monotonic() - started < 2
        assert DeliveryTally.objects.count() == 2  # not folded, and still counted
        assert tallied() == counted()
    finally:
        release.set()
        other.join(10)
    assert tallies.fold(now) == 2
    assert DeliveryTally.objects.count() == 1
    assert tallied() == counted()


def tallied_causes():
    """{(hour, cause): failed deliveries} as the tallies say, zeros left out."""
    sums = Counter()
    for row in DeliveryTally.objects.filter(state=State.FAILED):
        sums[(row.hour, row.cause)] += row.change
    return {key: n for key, n in sums.items() if n}


def counted_causes():
    rows = (
        Delivery.objects.filter(state=State.FAILED)
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "error_cause")
        .annotate(n=Count("pk"))
    )
    return {(row["hour"], row["error_cause"]): row["n"] for row in rows}


def test_failures_are_tallied_by_cause_as_causes_and_states_change(make_call):
    now = timezone.now()
    first, second, third = (make_call(state="pending", received_at=now) for _ in range(3))
    Delivery.objects.filter(pk__in=[first.pk, second.pk]).update(state=State.FAILED, error_cause="http_400")
    Delivery.objects.filter(pk=third.pk).update(error_cause="http_503")  # still retrying: not a failure
    assert tallied_causes() == counted_causes() == {(hour(now), "http_400"): 2}
    assert DeliveryTally.objects.filter(state=State.PENDING).exclude(cause="").count() == 0

    Delivery.objects.filter(pk=second.pk).update(error_cause="timeout")  # failed again, another cause
    Delivery.objects.filter(pk=third.pk).update(state=State.FAILED)
    expected = {(hour(now), "http_400"): 1, (hour(now), "timeout"): 1, (hour(now), "http_503"): 1}
    assert tallied_causes() == counted_causes() == expected
    Delivery.objects.filter(pk=first.pk).update(state=State.PENDING, error_cause="")  # resent
    del expected[(hour(now), "http_400")]
    assert tallied_causes() == counted_causes() == expected

    tallies.fold(now)
    assert tallied_causes() == expected
    assert tallied() == counted() == {(hour(now), State.FAILED): 2, (hour(now), State.PENDING): 1}
    assert DeliveryTally.objects.count() == 3  # one row per hour, state and cause


def test_a_fold_takes_its_hours_in_ranges_of_about_a_chunk_and_keeps_every_sum(make_call, monkeypatch):
    now = timezone.now()
    for n in range(12):  # 12 hours; the last 3 hours with 4 deliveries each, the others with 1
        for _ in range(4 if n < 3 else 1):
            make_call(state=State.DELIVERED, received_at=now - timedelta(hours=n))
    tallies.fold(now)
    Delivery.objects.update(state=State.FAILED, error_cause="http_400")  # 2 rows more per delivery
    assert [count for _, count in tallies.dirty_hours(10**12)] == [3] * 9 + [9] * 3

    taken = []
    fold_chunk = tallies.fold_chunk
    monkeypatch.setattr(tallies, "fold_chunk", lambda *args: taken.append(fold_chunk(*args)) or taken[-1])
    tallies.fold(now, chunk=7)
    # Ranges of about 7 rows: two quiet hours at a time (of their 3 rows, the 2 of the key with more
    # than one are taken), then each busy hour alone, in chunks of 7 (its 2 rows left then hold one
    # key each: the next fold's).
    assert taken == [4, 4, 4, 4, 2, 7, 0, 7, 0, 7, 0]
    assert tallied() == counted()
    tallies.fold(now)
    assert tallied() == counted()
    assert DeliveryTally.objects.count() == 12  # one row per hour and key


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner and its statistics")
def test_a_fold_stays_quick_when_the_statistics_say_the_table_is_empty():
    # Statistics taken while the table was empty (an autovacuum after rolled-back writes) made the
    # planner loop over the tallies and run the keys' aggregate again for each row: a fold of 20,000
    # rows ran for over half an hour (CI, seeding the dashboard's scale test). The statement
    # timeout turns such a plan into an error here.
    insert = (
        f"INSERT INTO {tallies.TABLE} (hour, state, cause, change)"  # noqa: S608
        " SELECT date_trunc('hour', now()) - (n % 40) * interval '1 hour',"
        " (ARRAY['pending', 'delivered', 'failed'])[1 + n % 3], '', 1 FROM generate_series(1, 20000) n"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert)
        transaction.set_rollback(True)  # pages of dead rows: what ANALYZE then finds is "no row"
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tallies.TABLE}")
        cursor.execute(insert)
        cursor.execute("SHOW enable_nestloop")
        before = cursor.fetchone()[0]
        cursor.execute("SET LOCAL statement_timeout = '20s'")
    assert tallies.fold() == 20_000
    assert DeliveryTally.objects.count() == 120  # one row per hour and state
    assert set(DeliveryTally.objects.values_list("change", flat=True)) == {20_000 // 120, 20_000 // 120 + 1}
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_nestloop")
        assert cursor.fetchone()[0] == before  # put back for the rest of the transaction
