"""The verbs the ingestion, the views and the commands use: accept calls for delivery, resend
one, say why one cannot be resent, expunge one's personal data. The engine itself is
`forwarding.delivery`."""

from django.db import transaction
from django.utils import timezone

from forwarding import event_names, privacy, rawsql
from forwarding.delivery import exchanges, queue
from forwarding.models import Call, Delivery, State, Trigger


def accept(calls):
    """Create one pending delivery per newly stored call; their tasks appear when it commits.

    Called inside the ingestion transaction, right after the calls are inserted.
    """
    now = timezone.now()
    keys = event_names.record_arrivals(calls)
    gone = privacy.suppressed({call.user_id for call in calls})  # forgotten users who asked for it
    deliveries = [
        Delivery(
            call=call,
            user_id=call.user_id,
            anonymous_id=call.anonymous_id,
            event_key=keys.get(call.pk, ""),
            created_at=call.received_at,
            next_attempt_at=call.received_at,
            enqueued_at=now,
        )
        for call in calls
        if call.user_id not in gone
    ]
    rawsql.insert(deliveries)
    if gone:
        forgotten = [call for call in calls if call.user_id in gone]
        Delivery.objects.bulk_create(
            Delivery(
                call=call,
                created_at=call.received_at,
                next_attempt_at=call.received_at,
                state=State.SUPPRESSED,
                last_error=f"{privacy.REASON}: their calls are suppressed",
                error_cause="forgotten",
            )
            for call in forgotten
        )
        privacy.expunge([call.pk for call in forgotten], now)  # never kept: their payload, ids and email go at once
    ids = [delivery.call_id for delivery in deliveries]
    if ids:
        queue.enqueue_with_commit(ids)
    return deliveries


def resend(delivery, trigger=Trigger.MANUAL):
    """Try a delivery again now, keeping its call and created_at (Intercom dedups the event).
    False when it cannot be: in flight, or its payload is gone (see `resend_refusal`)."""
    return queue.reopen([delivery.pk], trigger) == 1


def resend_refusal(call):
    """Why a call cannot be resent, or "" when it can."""
    if call.payload is None:
        when = f" on {call.payload_removed_at:%Y-%m-%d}" if call.payload_removed_at else ""
        return f"its payload was removed{when} ({call.payload_removed_reason or 'retention'}): nothing left to send"
    return ""


def expunge(call, reason):
    """Remove a call's personal data (payload, email, exchange bodies); the attempt history stays."""
    now = timezone.now()
    with transaction.atomic():
        Call.objects.filter(pk=call.pk).update(
            payload=None, email="", payload_removed_at=now, payload_removed_reason=reason
        )
        exchanges.clear_bodies([call.pk], "[expunged]")
