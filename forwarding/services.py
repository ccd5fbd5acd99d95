"""The verbs of the delivery engine: accept, deliver, resend, release."""

from django.db import transaction

from forwarding.models import Delivery


def accept(calls):
    """Create one pending delivery per newly stored call; enqueue them once committed.

    Called inside the ingestion transaction, right after the calls are inserted.
    """
    deliveries = [
        Delivery(call=call, user_id=call.user_id, anonymous_id=call.anonymous_id, created_at=call.received_at)
        for call in calls
    ]
    Delivery.objects.bulk_create(deliveries)
    ids = [call.pk for call in calls]
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return deliveries


def enqueue(delivery_ids):
    """Hand deliveries to the task queue (filled in by the delivery engine)."""
