"""On PostgreSQL a test's statement waits a minute at most for a lock, and the report of a test it
stops names the session that held the lock, and the process that opened it (tests/lock_waits.py);
a statement whose client is gone is stopped within seconds, and lets go of its locks."""

import os
import subprocess
import sys

import pytest
from django.db import OperationalError, connection, transaction

from forwarding.models import Delivery, State
from tests import lock_waits, processes
from tests.forwarding.locks import Holder

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="lock timeouts: PostgreSQL (DATABASE_URL)"),
]


def test_the_test_database_waits_a_minute_at_most_for_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "1min"


def test_a_statement_whose_client_was_killed_stops_within_seconds():
    sleeper = subprocess.Popen(
        [sys.executable, "-c", SLEEPER], cwd=processes.ROOT, env=processes.relay_env(), stdout=subprocess.PIPE
    )
    name = f"-c-{sleeper.pid}"  # the application_name of its session: "-c" is its sys.argv[0]
    try:
        assert sleeper.stdout.readline() == b"connected\n"
        processes.wait_until(lambda: sessions_named(name) == ["active"], timeout=10, message="the sleep runs")
    finally:
        sleeper.kill()
        sleeper.wait(10)
        sleeper.stdout.close()
    # Within 15 s, not the 60 s of its sleep.
    processes.wait_until(lambda: sessions_named(name) == [], timeout=15, message="the session ends")


SLEEPER = """
import django
django.setup()
from django.db import connection
connection.ensure_connection()
print("connected", flush=True)
connection.cursor().execute("SELECT pg_sleep(60)")
"""


def sessions_named(suffix):
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE application_name LIKE %s", [f"%{suffix}"])
        return [state for (state,) in cursor.fetchall()]


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
