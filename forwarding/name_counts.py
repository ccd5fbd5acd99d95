"""The event-name counters added to in one statement each, in SQL that SQLite and PostgreSQL
share: Django resolves every WHEN of a CASE on its own (slow with many names), and has no
upsert that adds."""

from django.db import connection

from forwarding.models import EventName, EventNameHour


def add_arrivals(counts, keys=None):
    """`counts` is {event name id: (calls, latest received_at)}: add the calls to each name's
    total and move its last_seen_at on to the latest. With `keys` ({id: key}), only rows that
    still hold their key are counted. Returns whether every id was counted."""
    ops, ids = connection.ops, sorted(counts)
    table = connection.ops.quote_name(EventName._meta.db_table)
    total_case, total_params = by_id([(pk, counts[pk][0]) for pk in ids])
    last_case, last_params = by_id([(pk, ops.adapt_datetimefield_value(counts[pk][1])) for pk in ids])
    where, where_params = f"id IN ({', '.join(['%s'] * len(ids))})", ids
    if keys is not None:
        key_case, key_params = by_id([(pk, keys[pk]) for pk in ids])
        where, where_params = f"{where} AND {ops.quote_name('key')} = {key_case}", [*ids, *key_params]
    sql = (
        f"UPDATE {table} SET total_count = total_count + {total_case}, "
        f"last_seen_at = CASE WHEN {last_case} > last_seen_at THEN {last_case} ELSE last_seen_at END "
        f"WHERE {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*total_params, *last_params, *last_params, *where_params])
        return cursor.rowcount == len(ids)


def add_to_hours(counts):
    """`counts` is {(event name id, hour): calls}: add to each hour's bucket, creating it."""
    table = connection.ops.quote_name(EventNameHour._meta.db_table)
    rows = ", ".join(["(%s, %s, %s)"] * len(counts))
    params = []
    # In one order for every request: two concurrent upserts that lock the same buckets in
    # different orders would deadlock (PostgreSQL).
    for (pk, hour), calls in sorted(counts.items()):
        params += [pk, connection.ops.adapt_datetimefield_value(hour), calls]
    sql = (
        f"INSERT INTO {table} (event_name_id, hour, count) VALUES {rows} "
        f"ON CONFLICT (event_name_id, hour) DO UPDATE SET count = {table}.count + excluded.count"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def by_id(values):
    """A CASE on the row's id and its parameters: [(id, value), ...]."""
    whens = " ".join(["WHEN %s THEN %s"] * len(values))
    params = [item for pair in values for item in pair]
    return f"(CASE id {whens} END)", params
