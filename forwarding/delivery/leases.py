"""The claim of deliveries, the statement every task starts with, written in SQL that SQLite
(3.35+, for RETURNING) and PostgreSQL share: built by the ORM (a NOT EXISTS on the same table) it
cost more to compile than to run. A task claims all its deliveries in one statement."""

from django.db import connection

from forwarding.models import Delivery, State

TABLE = Delivery._meta.db_table

# Due, pending, and no older call of the same user new or in flight: a call in retry backoff
# (retry_count > 0) does not hold back the ones after it. Anonymous calls are never held back.
# Two calls of one user in the same statement: the newer is held back by the older, whichever
# state the statement has put the older in.
CLAIM = f"""
UPDATE {TABLE} SET state = '{State.DELIVERING}', lease_expires_at = %s, updated_at = %s
WHERE call_id IN ({{ids}}) AND state = '{State.PENDING}' AND next_attempt_at <= %s
  AND (user_id = '' OR NOT EXISTS (
    SELECT 1 FROM {TABLE} AS older
    WHERE older.user_id = {TABLE}.user_id
      AND older.state IN ('{State.PENDING}', '{State.DELIVERING}') AND older.retry_count = 0
      AND (older.created_at < {TABLE}.created_at
           OR (older.created_at = {TABLE}.created_at AND older.call_id < {TABLE}.call_id))))
RETURNING call_id
"""

# Claimed deliveries a task gives back untried (its budget ran out): due again, and enqueued.
GIVE_BACK = f"""
UPDATE {TABLE} SET state = '{State.PENDING}', lease_expires_at = NULL, next_attempt_at = %s,
  enqueued_at = %s, updated_at = %s
WHERE call_id IN ({{ids}}) AND state = '{State.DELIVERING}' AND lease_expires_at = %s
"""


# A user's next due deliveries, oldest first: a LIMIT down the delivery_user index (user_id, state,
# created_at), one per user and all in one statement (SQLite allows 500 terms in a compound SELECT).
NEXT_OF_USER = f"""
SELECT * FROM (SELECT user_id, created_at, call_id FROM {TABLE}
  WHERE user_id = %s AND state = '{State.PENDING}' AND next_attempt_at <= %s
  ORDER BY created_at, call_id LIMIT %s) AS user_{{n}}
"""
USERS_PER_STATEMENT = 100


def next_due(user_ids, now, limit):
    """{user_id: the user's next `limit` due deliveries, oldest first} for the users who have some."""
    users = sorted(user_ids)
    moment = connection.ops.adapt_datetimefield_value(now)
    found = {}
    with connection.cursor() as cursor:
        for start in range(0, len(users), USERS_PER_STATEMENT):
            chunk = users[start : start + USERS_PER_STATEMENT]
            sql = " UNION ALL ".join(NEXT_OF_USER.format(n=n) for n in range(len(chunk)))
            cursor.execute(f"{sql} ORDER BY 1, 2, 3", [value for user in chunk for value in (user, moment, limit)])
            for user_id, _, pk in cursor.fetchall():
                found.setdefault(user_id, []).append(pk)
    return found


def take(pks, now, lease_until):
    """Claim the deliveries `pks` for this worker until `lease_until`; the set of those taken."""
    if not pks:
        return set()
    moment = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_with_ids(CLAIM, pks), [moment(lease_until), moment(now), *pks, moment(now)])
        return {row[0] for row in cursor.fetchall()}


def give_back(pks, now, lease_until):
    """Return claimed deliveries this worker did not try, unless their lease was taken from it."""
    if not pks:
        return 0
    moment = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_with_ids(GIVE_BACK, pks), [moment(now), moment(now), moment(now), *pks, moment(lease_until)])
        return cursor.rowcount


def _with_ids(statement, pks):
    return statement.format(ids=", ".join(["%s"] * len(pks)))
