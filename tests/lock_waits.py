"""A test stopped by PostgreSQL's lock timeout (config/settings_test.py) reports who held the lock.

A statement waiting on another session's lock would otherwise wait until pytest-timeout stops the
test, and every test after it that needs the same rows too, with nothing in the report but this
process's own stack. The report gets the database's sessions as they are when the test fails:
each one's state, what it waits for, which sessions block it, the tables it holds locks on,
and its last statement."""

import psycopg
from django.db import DatabaseError, connection

SESSIONS = """
SELECT a.pid, a.application_name, a.state, a.wait_event_type || ':' || a.wait_event,
       pg_blocking_pids(a.pid), now() - a.xact_start,
       (SELECT string_agg(DISTINCT l.relation::regclass::text, ' ') FROM pg_locks l
        WHERE l.pid = a.pid AND l.relation IS NOT NULL),
       left(a.query, 300)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST
"""


def stopped_by_lock_timeout(exc):
    """Whether `exc`, or an exception it was raised from, is PostgreSQL's lock timeout."""
    while exc is not None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def sessions():
    """The other sessions of the test database, one line each, read over a connection of its own."""
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute(SESSIONS)
            rows = cursor.fetchall()
    except DatabaseError as exc:
        return f"could not read pg_stat_activity: {exc}"
    finally:
        other.close()
    columns = "pid | application | state | waiting for | blocked by | transaction age | tables locked | statement"
    return "\n".join([columns, *(" | ".join(str(value) for value in row) for row in rows)])
