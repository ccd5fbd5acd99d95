"""On PostgreSQL a test's statement waits a minute at most for a lock, and the report of a test it
stops names the session that held the lock, and the process that opened it (tests/lock_waits.py)."""

import os

import pytest
from django.db import OperationalError, connection, transaction

from forwarding.models import Delivery, State
from tests import lock_waits
from tests.forwarding.locks import Holder

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="lock timeouts: PostgreSQL (DATABASE_URL)"),
]


def test_the_test_database_waits_a_minute_at_most_for_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "1min"


def test_a_statement_stopped_by_the_lock_timeout_names_the_session_that_held_the_lock(make_call):
    delivery = Delivery.objects.get(call=make_call(state="pending"))
    holder = Holder(delivery.pk)
    holder.start()
    assert holder.locked.wait(10)
    try:
        with pytest.raises(OperationalError) as raised, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            Delivery.objects.filter(pk=delivery.pk).update(state=State.DELIVERED)
        assert lock_waits.stopped_by_lock_timeout(raised.value)
        report = lock_waits.sessions()
    finally:
        holder.release.set()
        holder.join(10)
    sessions = [line.split(" | ") for line in report.splitlines()[1:]]
    [held] = [session for session in sessions if session[2] == "idle in transaction"]
    assert held[1].endswith(f"-{os.getpid()}")  # the session is named after the process that opened it
    assert "forwarding_delivery" in held[6].split()
    assert Delivery.objects.get(pk=delivery.pk).state == State.PENDING


def test_other_errors_are_not_lock_timeouts():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
    except Exception as exc:  # noqa: BLE001 (whatever the driver raises)
        error = exc
    assert not lock_waits.stopped_by_lock_timeout(error)
    assert not lock_waits.stopped_by_lock_timeout(ValueError("no"))
