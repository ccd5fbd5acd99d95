"""The delivery tallies (see `DeliveryTally`): the triggers that write them, and their folding.

The triggers add a row of -1 for the old (hour, state, cause) and +1 for the new on every change
of a delivery's state (or of a failed one's cause), and +1 for every new delivery; a deleted
delivery (pruned) stays counted, as a call that was received. `fold` sums the rows into one per
(hour, state, cause), and drops the hours the overview no longer shows."""

import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from forwarding import write_lock
from forwarding.models import DeliveryTally

TABLE = DeliveryTally._meta.db_table  # the triggers' SQL below is the migrations': it names its tables
KEPT = timedelta(days=8)  # the overview shows 7 days
FOLD_CHUNK = 2_000  # rows folded in one transaction (and held in memory): some 30 ms on SQLite
# On PostgreSQL one fold at a time holds this transaction-level advisory lock; another fold (the
# schedule's sweep beside an operator's, or one in a worker killed mid-transaction whose session
# lingers) is skipped rather than waited for: the rows it would sum still count as they are.
FOLD_LOCK = 0x7461_6C6C_79  # "tally"

# The hour a delivery was received in, as each backend stores a datetime.
SQLITE_HOUR = "substr({row}.created_at, 1, 13) || ':00:00'"
POSTGRES_HOUR = "date_trunc('hour', {row}.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# The cause a delivery is tallied under: its error_cause once failed, else "" (one row per state).
CAUSE = "CASE WHEN {row}.state = 'failed' THEN {row}.error_cause ELSE '' END"

SQLITE_TRIGGERS = [
    """CREATE TRIGGER delivery_tally_insert AFTER INSERT ON forwarding_delivery BEGIN
        INSERT INTO forwarding_deliverytally ({columns}) VALUES {new};
    END""",
    """CREATE TRIGGER delivery_tally_update AFTER UPDATE OF state, created_at, error_cause ON forwarding_delivery
    WHEN OLD.state IS NOT NEW.state OR OLD.created_at IS NOT NEW.created_at OR {changed_cause} BEGIN
        INSERT INTO forwarding_deliverytally ({columns}) VALUES {old}, {new};
    END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS delivery_tally_insert", "DROP TRIGGER IF EXISTS delivery_tally_update"]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION forwarding_delivery_tally() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO forwarding_deliverytally ({columns}) VALUES {old};
        END IF;
        INSERT INTO forwarding_deliverytally ({columns}) VALUES {new};
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER delivery_tally_insert AFTER INSERT ON forwarding_delivery
    FOR EACH ROW EXECUTE FUNCTION forwarding_delivery_tally()""",
    """CREATE TRIGGER delivery_tally_update AFTER UPDATE OF state, created_at, error_cause ON forwarding_delivery
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.created_at IS DISTINCT FROM NEW.created_at
                       OR {changed_cause})
    EXECUTE FUNCTION forwarding_delivery_tally()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS delivery_tally_insert ON forwarding_delivery",
    "DROP TRIGGER IF EXISTS delivery_tally_update ON forwarding_delivery",
    "DROP FUNCTION IF EXISTS forwarding_delivery_tally()",
]


def hour_sql(vendor, row):
    return (POSTGRES_HOUR if vendor == "postgresql" else SQLITE_HOUR).format(row=row)


def cause_sql(row):
    return CAUSE.format(row=row)


def triggers_sql(vendor, causes=True):
    """The triggers' statements; `causes` False for a tally table from before its `cause` column
    (the migrations that install the triggers before 0016 added it)."""
    columns = "hour, state, cause, change" if causes else "hour, state, change"

    def values(row, change):
        cause = f"{cause_sql(row)}, " if causes else ""
        return f"({hour_sql(vendor, row)}, {row}.state, {cause}{change})"

    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    changed_cause = f"({cause_sql('OLD')}) {distinct} ({cause_sql('NEW')})" if causes else "FALSE"
    templates = POSTGRES_TRIGGERS if vendor == "postgresql" else SQLITE_TRIGGERS
    parts = {"columns": columns, "old": values("OLD", -1), "new": values("NEW", 1), "changed_cause": changed_cause}
    return [template.format(**parts) for template in templates]


def has_causes(connection):
    """Whether the tally table has its `cause` column yet (see `triggers_sql`)."""
    with connection.cursor() as cursor:
        return "cause" in {column.name for column in connection.introspection.get_table_description(cursor, TABLE)}


def create_triggers(schema_editor):
    """Install the triggers, and tally the deliveries already stored (in the migration)."""
    install_triggers(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        tally_stored(cursor, schema_editor.connection.vendor, has_causes(schema_editor.connection))


def install_triggers(schema_editor):
    """(Re)install the triggers: SQLite drops them when a migration rebuilds the deliveries' table."""
    drop_triggers(schema_editor)
    connection = schema_editor.connection
    for sql in triggers_sql(connection.vendor, has_causes(connection)):
        schema_editor.execute(sql, params=None)


def tally_stored(cursor, vendor, causes=True):
    """Tally the deliveries stored before the triggers were (one row per hour, state and cause;
    `causes` as in `triggers_sql`)."""
    cause = f"{cause_sql('forwarding_delivery')}, " if causes else ""
    cursor.execute(
        f"INSERT INTO {TABLE} (hour, state, {'cause, ' if causes else ''}change) "  # noqa: S608
        f"SELECT {hour_sql(vendor, 'forwarding_delivery')}, state, {cause}COUNT(*) FROM forwarding_delivery"
        f" GROUP BY 1, 2{', 3' if causes else ''}"
    )


def tally_causes(cursor, vendor):
    """Move the failed deliveries' tallies, counted before the tallies had causes, under their
    causes (migration 0016): +n under each cause and -n under "" for each hour, so that the totals
    per hour and state, deliveries pruned since included, stay as they were."""
    hour = hour_sql(vendor, "forwarding_delivery")
    failed = "FROM forwarding_delivery WHERE state = 'failed' AND error_cause <> ''"
    for cause, change in [("error_cause", "COUNT(*)"), ("''", "-COUNT(*)")]:
        cursor.execute(
            f"INSERT INTO {TABLE} (hour, state, cause, change) "  # noqa: S608
            f"SELECT {hour}, 'failed', {cause}, {change} {failed} GROUP BY 1, 3"
        )


def drop_triggers(schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in POSTGRES_DROP if vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(sql, params=None)


def fold(now=None, chunk=FOLD_CHUNK):
    """Sum the tallies into one row per (hour, state, cause), and drop the hours past KEPT. Only the
    keys with more than one row are touched: a sweep every few seconds used to rewrite every pair
    of the last 8 days (some 1,500 rows) when a handful had changed. Safe beside writers: each
    chunk takes exactly the rows it deletes, and the triggers only ever insert. Never waits for
    another fold (see FOLD_LOCK). Returns how many rows it folded.

    The hours to fold are found in one read (no write lock); each chunk then folds a range of
    them, of about `chunk` rows, reading only their rows. Every chunk used to find the keys to
    fold over the whole table, in the write transaction: after a million waits expired (200,000
    rows) a chunk held SQLite's write lock for 0.8 s, and a call stored meanwhile waited 1.7 s.
    On SQLite the lock is then left free as long as the chunk held it, for ingestion's writers."""
    now = now or timezone.now()
    DeliveryTally.objects.filter(hour__lt=now - KEPT).delete()
    last = DeliveryTally.objects.order_by("-pk").values_list("pk", flat=True).first()
    if last is None:
        return 0
    folded = 0
    for first_hour, last_hour in hour_ranges(dirty_hours(last), chunk):
        while True:
            began = time.monotonic()
            taken = fold_chunk(last, chunk, first_hour, last_hour)
            folded += taken
            write_lock.leave_free(began)
            if taken < chunk:
                break
    return folded


# The keys with more than one row up to an id, in a range of hours: what a fold has to sum.
DIRTY = (
    f"SELECT hour, state, cause FROM {TABLE} WHERE id <= %s AND hour >= %s AND hour <= %s"  # noqa: S608
    " GROUP BY hour, state, cause HAVING COUNT(*) > 1"
)


def dirty_hours(last):
    """[(hour, its rows)] of the hours with a key of more than one row up to id `last`, in order.
    Asks first whether there is one at all (the sweep's usual answer, and half the cost)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {TABLE} WHERE id <= %s GROUP BY hour, state, cause HAVING COUNT(*) > 1 LIMIT 1",  # noqa: S608
            [last],
        )
        if cursor.fetchone() is None:
            return []
        cursor.execute(
            f"SELECT hour, SUM(n) FROM (SELECT hour, COUNT(*) AS n FROM {TABLE} WHERE id <= %s"  # noqa: S608
            " GROUP BY hour, state, cause) counted GROUP BY hour HAVING MAX(n) > 1 ORDER BY hour",
            [last],
        )
        return cursor.fetchall()


def hour_ranges(hours, chunk):
    """(first, last) hours of consecutive runs of `hours` holding about `chunk` rows each (an hour
    with more is a range alone, folded in several chunks)."""
    ranges, rows = [], chunk
    for hour, count in hours:
        if rows + count > chunk:
            ranges.append([hour, hour])
            rows = 0
        ranges[-1][1] = hour
        rows += count
    return ranges


def fold_chunk(last, chunk, first_hour, last_hour):
    """Fold the `chunk` oldest rows of the keys with more than one row, up to id `last` and in the
    hours from `first_hour` to `last_hour` (their sums get new ids, past `last`). One join,
    whatever the number of keys: a statement per key let PostgreSQL, with no statistics yet, walk
    the whole table by id for each."""
    with transaction.atomic(), connection.cursor() as cursor:
        if not fold_lock(cursor):
            return 0
        with no_nested_loops(cursor):
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE id IN (SELECT t.id FROM {TABLE} t JOIN ({DIRTY}) dirty"  # noqa: S608
                " ON t.hour = dirty.hour AND t.state = dirty.state AND t.cause = dirty.cause"
                " WHERE t.id <= %s AND t.hour >= %s AND t.hour <= %s ORDER BY t.id LIMIT %s)"
                " RETURNING hour, state, cause, change",
                [last, first_hour, last_hour, last, first_hour, last_hour, chunk],
            )
            rows = cursor.fetchall()
        sums = defaultdict(int)
        for hour, state, cause, change in rows:
            sums[(hour, state, cause)] += change
        kept = [(*key, total) for key, total in sums.items() if total]
        if kept:
            cursor.executemany(
                f"INSERT INTO {TABLE} (hour, state, cause, change) VALUES (%s, %s, %s, %s)",  # noqa: S608
                kept,
            )
    return len(rows)


@contextmanager
def no_nested_loops(cursor):
    """On PostgreSQL, the fold's join without nested loops: a hash or merge join reads each side
    once. The table's statistics are often wrong for it, its rows coming and going in bursts: taken
    while it was empty (an autovacuum after rolled-back writes), they made the planner loop over
    the tallies and run the aggregate of the keys again for each row, and 20,000 rows took over
    half an hour. The setting is put back as it was, for an outer transaction's next statements."""
    if connection.vendor != "postgresql":
        yield
        return
    cursor.execute("SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)")
    previous = cursor.fetchone()[0]
    yield  # on an error the fold's transaction (or savepoint) rolls back, and the setting with it
    cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [previous])


def fold_lock(cursor):
    """Whether this transaction may fold: on PostgreSQL, when no other fold holds FOLD_LOCK (folds
    delete the same rows, so a second one would wait on the first's row locks until it commits).
    SQLite has one writer at a time anyway."""
    if connection.vendor != "postgresql":
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
    return cursor.fetchone()[0]
