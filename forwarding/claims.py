"""The claim of a delivery, the statement every delivery starts with, written in SQL that SQLite
and PostgreSQL share: built by the ORM (a NOT EXISTS on the same table) it cost more to compile
than to run, about a fifth of a worker's time."""

from django.db import connection

from forwarding.models import State

# Due, pending, and no older call of the same user new or in flight: a call in retry backoff
# (retry_count > 0) does not hold back the ones after it. Anonymous calls are never held back.
CLAIM = f"""
UPDATE forwarding_delivery SET state = '{State.DELIVERING}', lease_expires_at = %s, updated_at = %s
WHERE call_id = %s AND state = '{State.PENDING}' AND next_attempt_at <= %s
  AND (user_id = '' OR NOT EXISTS (
    SELECT 1 FROM forwarding_delivery AS older
    WHERE older.user_id = forwarding_delivery.user_id
      AND older.state IN ('{State.PENDING}', '{State.DELIVERING}') AND older.retry_count = 0
      AND (older.created_at < forwarding_delivery.created_at
           OR (older.created_at = forwarding_delivery.created_at AND older.call_id < forwarding_delivery.call_id))))
"""


def take(pk, now, lease_until):
    """Claim delivery `pk` for this worker until `lease_until`; True when it was taken."""
    moment = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(CLAIM, [moment(lease_until), moment(now), pk, moment(now)])
        return cursor.rowcount == 1
