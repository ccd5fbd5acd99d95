"""A task's delivered attempts, written together: one transaction per flush holds their
exchanges, the attempts' outcomes, the deliveries' new state and the names' delivered counts,
where one delivery at a time took four statements and a commit.

The attempts' rows are created before their first request, all of the task's in one INSERT
(`begin`), so a worker that dies leaves the attempts it began. Until a flush, a delivered call
stays `delivering` under its lease: were the worker to die first, the call is sent again once
the lease expires, and Intercom collapses the repeated event (same user, name and created_at,
DESIGN.md §6). A flush comes every FLUSH_ROWS deliveries, every FLUSH_SECONDS, and at the end
of the task."""

import time
from collections import Counter

from django.db import connection, transaction
from django.utils import timezone

from forwarding.models import Attempt, Delivery, EventName, Exchange, Outcome, State, Trigger

FLUSH_ROWS = 50
FLUSH_SECONDS = 0.5

ATTEMPTS = Attempt._meta.db_table
DELIVERIES = Delivery._meta.db_table
NAMES = EventName._meta.db_table
WARNINGS = Attempt._meta.get_field("warnings")

ATTEMPT_DELIVERED = f"""
UPDATE {ATTEMPTS} SET outcome = '{Outcome.DELIVERED}', status = %s, error = '', warnings = %s,
  started_at = %s, duration_ms = %s
WHERE id = %s
"""
DELIVERY_DELIVERED = f"""
UPDATE {DELIVERIES} SET state = '{State.DELIVERED}', lease_expires_at = NULL, updated_at = %s,
  trigger = '{Trigger.AUTO}', warnings = %s, warned = %s, last_status = %s, last_error = '', error_cause = '',
  delivered_at = %s, attempt_count = %s
WHERE call_id = %s
"""
NAME_DELIVERED = f"UPDATE {NAMES} SET delivered_count = delivered_count + %s WHERE key = %s"


class Journal:
    def __init__(self):
        self._clear()

    def _clear(self):
        self.exchanges = []
        self.attempts = []
        self.deliveries = []
        self.names = Counter()
        self.oldest = None  # monotonic time of the first row not written

    @staticmethod
    def begin(deliveries):
        """Create the attempts' rows of the deliveries about to send, in one INSERT; by pk."""
        now = timezone.now()
        rows = [Attempt(delivery=delivery, trigger=delivery.trigger, started_at=now) for delivery in deliveries]
        return {attempt.delivery_id: attempt for attempt in Attempt.objects.bulk_create(rows)}

    def delivered(self, delivery, log, result, changes):
        """Keep a delivered attempt and the delivery's `changes` (see `attempts.outcome_changes`)
        for the next flush; the SQL above writes the fields a delivered outcome sets."""
        moment = connection.ops.adapt_datetimefield_value
        warnings = _json(changes["warnings"])
        self.exchanges += log.take_unwritten()
        self.attempts.append((result.status, warnings, moment(log.started_at), log.duration_ms(), log.attempt.pk))
        updated, delivered = moment(changes["updated_at"]), moment(changes["delivered_at"])
        self.deliveries.append(
            (
                updated,
                warnings,
                changes["warned"],
                changes["last_status"],
                delivered,
                changes["attempt_count"],
                delivery.pk,
            )
        )
        if delivery.event_key and delivery.state != State.DELIVERED:  # as `event_names.count_outcome`
            self.names[delivery.event_key] += 1
        if self.oldest is None:
            self.oldest = time.monotonic()
        if len(self.deliveries) >= FLUSH_ROWS or time.monotonic() - self.oldest >= FLUSH_SECONDS:
            self.flush()

    def flush(self):
        """Write what is kept, in one transaction."""
        if not self.deliveries:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            Exchange.objects.bulk_create(self.exchanges)
            cursor.executemany(ATTEMPT_DELIVERED, self.attempts)
            cursor.executemany(DELIVERY_DELIVERED, self.deliveries)
            cursor.executemany(NAME_DELIVERED, [(count, key) for key, count in sorted(self.names.items())])
        self._clear()


def _json(value):
    """A JSON column's value as the database takes it (text on SQLite, jsonb on PostgreSQL)."""
    return WARNINGS.get_db_prep_save(value, connection)
