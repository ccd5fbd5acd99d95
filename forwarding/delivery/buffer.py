"""The outcome buffer: a task's delivered attempts, written together. One transaction per flush
holds their exchanges, the attempts' outcomes, the deliveries' new state and the names' counts,
where one delivery at a time took four statements and a commit. The columns come from the
functions that build an outcome's fields (`outcomes.changes_of`, `AttemptLog.outcome_fields`,
`event_names.count_deltas`): one writer of each fact, two ways of writing it.

The attempts' rows are created before their first request, all of the task's in one INSERT
(`begin`), so a worker that dies leaves the attempts it began. Until a flush, a delivered call
stays `delivering` under its lease: were the worker to die first, the call is sent again once
the lease expires, and Intercom collapses the repeated event (same user, name and created_at;
docs/architecture.md). A flush comes every FLUSH_ROWS deliveries, every FLUSH_SECONDS, and at
the end of the task."""

import time
from collections import Counter, defaultdict
from functools import lru_cache

from django.db import connection, transaction
from django.utils import timezone

from forwarding import event_names
from forwarding.delivery import outcomes
from forwarding.models import Attempt, Delivery, EventName, Exchange, State

FLUSH_ROWS = 50
FLUSH_SECONDS = 0.5


class OutcomeBuffer:
    def __init__(self):
        self._clear()

    def _clear(self):
        self.exchanges = []
        self.rows = defaultdict(list)  # {(model, columns): [values + pk]}
        self.names = defaultdict(Counter)  # {counter: {event key: change}}
        self.count = 0
        self.oldest = None  # monotonic time of the first row not written

    @staticmethod
    def begin(deliveries):
        """Create the attempts' rows of the deliveries about to send, in one INSERT; by pk."""
        now = timezone.now()
        rows = [Attempt(delivery=delivery, trigger=delivery.trigger, started_at=now) for delivery in deliveries]
        return {attempt.delivery_id: attempt for attempt in Attempt.objects.bulk_create(rows)}

    def delivered(self, delivery, log, result):
        """Keep a delivered attempt and the delivery's changes for the next flush; returns them."""
        changes = outcomes.changes_of(delivery, log, result)
        self.exchanges += log.take_unwritten()
        self._keep(Attempt, log.outcome_fields(result), log.attempt.pk)
        self._keep(Delivery, changes, delivery.pk)
        if delivery.event_key:
            again = delivery.delivered_at is not None
            for counter, change in event_names.count_deltas(delivery.state, State.DELIVERED, again).items():
                self.names[counter][delivery.event_key] += change
        self.count += 1
        if self.oldest is None:
            self.oldest = time.monotonic()
        if self.count >= FLUSH_ROWS or time.monotonic() - self.oldest >= FLUSH_SECONDS:
            self.flush()
        return changes

    def _keep(self, model, fields, pk):
        columns = tuple(sorted(fields))
        values = [field.get_db_prep_save(fields[field.name], connection) for field in model_fields(model, columns)]
        self.rows[(model, columns)].append((*values, pk))

    def flush(self):
        """Write what is kept, in one transaction."""
        if not self.count:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            Exchange.objects.bulk_create(self.exchanges)
            for (model, columns), rows in self.rows.items():
                cursor.executemany(update_sql(model, columns), rows)
            for counter, changes in self.names.items():
                sql = f"UPDATE {EventName._meta.db_table} SET {counter} = {counter} + %s WHERE key = %s"
                cursor.executemany(sql, [(change, key) for key, change in sorted(changes.items())])
        self._clear()


@lru_cache(maxsize=8)
def model_fields(model, columns):
    """The fields named `columns` of `model` (looked up once per process, not per row)."""
    return tuple(model._meta.get_field(name) for name in columns)


@lru_cache(maxsize=8)
def update_sql(model, columns):
    """UPDATE of `columns` of one row of `model` by its primary key."""
    meta = model._meta
    assignments = ", ".join(f"{field.column} = %s" for field in model_fields(model, columns))
    return f"UPDATE {meta.db_table} SET {assignments} WHERE {meta.pk.column} = %s"
