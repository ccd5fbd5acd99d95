"""An attempt's outcome written: the delivery's changed fields built by one function (`changes`),
written at once by `finish`, or with a task's other delivered outcomes by the buffer
(forwarding/delivery/buffer.py), which takes its columns from `changes` too."""

import logging

from django.db import transaction
from django.utils import timezone

from forwarding import event_names
from forwarding.delivery import policy
from forwarding.models import Delivery, Outcome, State, Trigger

logger = logging.getLogger(__name__)

TERMINAL_OUTCOME_STATES = {
    Outcome.DELIVERED: State.DELIVERED,
    Outcome.WAITING: State.WAITING,
    Outcome.HELD: State.HELD,
    Outcome.SUPPRESSED: State.SUPPRESSED,
    Outcome.SKIPPED: State.SKIPPED,
    Outcome.FAILED: State.FAILED,
}


def finish(delivery, log, result):
    """Write the attempt's outcome and the delivery's next state; returns the changed fields."""
    changes = changes_of(delivery, log, result)
    report(delivery, result, changes)
    # One transaction: nobody sees the attempt's outcome without the delivery's new state.
    with transaction.atomic():
        if log is not None:
            log.finish(result)
        Delivery.objects.filter(pk=delivery.pk).update(**changes)
        new_state = changes.get("state", delivery.state)
        event_names.count_outcome(delivery.event_key, delivery.state, new_state, delivery.delivered_at is not None)
    return changes


def report(delivery, result, changes):
    """Log a failed or retried delivery at WARNING: call id, cause, next attempt."""
    state = changes.get("state")
    if state == State.FAILED:
        logger.warning("call %s failed: %s (%s)", delivery.pk, result.error, result.cause or "unknown cause")
    elif state == State.PENDING:
        logger.warning(
            "call %s will be tried again at %s: %s (%s)",
            delivery.pk,
            f"{changes['next_attempt_at']:%Y-%m-%d %H:%M:%S}",
            result.error,
            result.cause,
        )


def changes_of(delivery, log, result):
    """The delivery's fields an attempt's outcome changes (`log` is None when nothing was sent)."""
    now = timezone.now()
    changes = {
        "lease_expires_at": None,
        "updated_at": now,
        "trigger": Trigger.AUTO,
        "warnings": result.warnings,
        "warned": bool(result.warnings),
        "last_status": result.status,
    }
    state = TERMINAL_OUTCOME_STATES.get(result.outcome)
    if state is not None:
        changes.update(state=state, last_error=result.error[:500], error_cause=result.cause)
        if state == State.DELIVERED:
            changes.update(delivered_at=now, last_error="", error_cause="")
    else:
        changes.update(policy.next_state(delivery, result, now))
    if log is not None:
        changes["attempt_count"] = delivery.attempt_count + 1
    return changes
