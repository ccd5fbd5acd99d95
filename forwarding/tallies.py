"""The delivery tallies (see `DeliveryTally`): the triggers that write them, and their folding.

The triggers add a row of -1 for the old (hour, state) and +1 for the new on every change of
a delivery's state, and +1 for every new delivery; a deleted delivery (pruned) stays counted, as
a call that was received. `fold` sums the rows into one per (hour, state), and drops the hours
the overview no longer shows."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from forwarding.models import DeliveryTally

TABLE = DeliveryTally._meta.db_table  # the triggers' SQL below is the migrations': it names its tables
KEPT = timedelta(days=8)  # the overview shows 7 days
FOLD_CHUNK = 50_000  # rows held in memory at once

# The hour a delivery was received in, as each backend stores a datetime.
SQLITE_HOUR = "substr({row}.created_at, 1, 13) || ':00:00'"
POSTGRES_HOUR = "date_trunc('hour', {row}.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER delivery_tally_insert AFTER INSERT ON forwarding_delivery BEGIN
        INSERT INTO forwarding_deliverytally (hour, state, change)
        VALUES ({SQLITE_HOUR.format(row="NEW")}, NEW.state, 1);
    END""",
    f"""CREATE TRIGGER delivery_tally_update AFTER UPDATE OF state, created_at ON forwarding_delivery
    WHEN OLD.state IS NOT NEW.state OR OLD.created_at IS NOT NEW.created_at BEGIN
        INSERT INTO forwarding_deliverytally (hour, state, change)
        VALUES ({SQLITE_HOUR.format(row="OLD")}, OLD.state, -1), ({SQLITE_HOUR.format(row="NEW")}, NEW.state, 1);
    END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS delivery_tally_insert", "DROP TRIGGER IF EXISTS delivery_tally_update"]

POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION forwarding_delivery_tally() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO forwarding_deliverytally (hour, state, change)
            VALUES ({POSTGRES_HOUR.format(row="OLD")}, OLD.state, -1);
        END IF;
        INSERT INTO forwarding_deliverytally (hour, state, change)
        VALUES ({POSTGRES_HOUR.format(row="NEW")}, NEW.state, 1);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER delivery_tally_insert AFTER INSERT ON forwarding_delivery
    FOR EACH ROW EXECUTE FUNCTION forwarding_delivery_tally()""",
    """CREATE TRIGGER delivery_tally_update AFTER UPDATE OF state, created_at ON forwarding_delivery
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION forwarding_delivery_tally()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS delivery_tally_insert ON forwarding_delivery",
    "DROP TRIGGER IF EXISTS delivery_tally_update ON forwarding_delivery",
    "DROP FUNCTION IF EXISTS forwarding_delivery_tally()",
]


def hour_sql(vendor, row):
    return (POSTGRES_HOUR if vendor == "postgresql" else SQLITE_HOUR).format(row=row)


def create_triggers(schema_editor):
    """Install the triggers, and tally the deliveries already stored (in the migration)."""
    install_triggers(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        tally_stored(cursor, schema_editor.connection.vendor)


def install_triggers(schema_editor):
    """(Re)install the triggers: SQLite drops them when a migration rebuilds the deliveries' table."""
    drop_triggers(schema_editor)
    vendor = schema_editor.connection.vendor
    for sql in POSTGRES_TRIGGERS if vendor == "postgresql" else SQLITE_TRIGGERS:
        schema_editor.execute(sql, params=None)


def tally_stored(cursor, vendor):
    """Tally the deliveries stored before the triggers were (one row per hour and state)."""
    cursor.execute(
        "INSERT INTO forwarding_deliverytally (hour, state, change) "
        f"SELECT {hour_sql(vendor, 'forwarding_delivery')}, state, COUNT(*) FROM forwarding_delivery GROUP BY 1, 2"
    )


def drop_triggers(schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in POSTGRES_DROP if vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(sql, params=None)


def fold(now=None, chunk=FOLD_CHUNK):
    """Sum the tallies into one row per (hour, state), and drop the hours past KEPT. Only the
    (hour, state) pairs with more than one row are touched: a sweep every few seconds used to
    rewrite every pair of the last 8 days (some 1,500 rows) when a handful had changed. Safe
    beside writers: each pair's rows are taken by the DELETE that returns them, `chunk` at a
    time, and the triggers only ever insert. Returns how many rows it folded."""
    now = now or timezone.now()
    DeliveryTally.objects.filter(hour__lt=now - KEPT).delete()
    last = DeliveryTally.objects.order_by("-pk").values_list("pk", flat=True).first()
    if last is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hour, state FROM {TABLE} WHERE id <= %s GROUP BY hour, state HAVING COUNT(*) > 1",  # noqa: S608
            [last],
        )
        pairs = cursor.fetchall()
    return sum(fold_pair(hour, state, last, chunk) for hour, state in pairs)


def fold_pair(hour, state, last, chunk):
    """Fold the rows of one (hour, state) up to id `last` into one, `chunk` rows at a time."""
    folded = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE hour = %s AND state = %s"  # noqa: S608
                " AND id <= %s ORDER BY id LIMIT %s) RETURNING change",
                [hour, state, last, chunk],
            )
            changes = [change for (change,) in cursor.fetchall()]
            if sum(changes):
                cursor.execute(
                    f"INSERT INTO {TABLE} (hour, state, change) VALUES (%s, %s, %s)",  # noqa: S608
                    [hour, state, sum(changes)],
                )
        folded += len(changes)
        if len(changes) < chunk:
            return folded
