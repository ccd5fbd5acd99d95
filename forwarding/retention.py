"""Retention: payloads go after RELAY_PAYLOAD_RETENTION_DAYS (with the bodies of their HTTP
exchanges, which carry the same traits and emails), then whole log entries after
RELAY_LOG_RETENTION_DAYS, in batches. A call whose delivery is not finished is never pruned.
Rejected messages go after RELAY_REJECTED_RETENTION_DAYS."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Task

from forwarding.delivery import exchanges
from forwarding.models import Attempt, Call, Delivery, EventNameHour, Exchange, RejectedMessage, State

BATCH = 1000
# Deliveries that still need their call: never pruned, whatever their age.
UNFINISHED = [State.PENDING, State.DELIVERING, State.WAITING, State.HELD]
EXPIRED_REASON = "expired after RELAY_PAYLOAD_RETENTION_DAYS"
EXPIRED_BODY = "[expired]"


def prunable_calls(cutoff):
    """Calls received before `cutoff` whose delivery is finished, oldest first."""
    return Call.objects.filter(received_at__lt=cutoff).exclude(delivery__state__in=UNFINISHED).order_by("pk")


def batches(queryset, batch=BATCH):
    """Primary keys of `queryset` in batches, walking forward by key (no offset scans)."""
    last = 0
    while True:
        pks = list(queryset.filter(pk__gt=last).values_list("pk", flat=True)[:batch])
        if not pks:
            return
        last = pks[-1]
        yield pks


def prune_payloads(now=None, batch=BATCH, progress=None):
    """Remove the payloads of finished calls past their retention, and their exchanges' bodies;
    returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RELAY_PAYLOAD_RETENTION_DAYS)
    done = 0
    for pks in batches(prunable_calls(cutoff).filter(payload__isnull=False), batch):
        with transaction.atomic():
            done += Call.objects.filter(pk__in=pks, payload__isnull=False).update(
                payload=None, payload_removed_at=now, payload_removed_reason=EXPIRED_REASON
            )
            exchanges.clear_bodies(pks, EXPIRED_BODY)
        if progress:
            progress("payloads", done)
    return done


def prune_logs(now=None, batch=BATCH, progress=None):
    """Delete finished calls past the log retention with their deliveries, attempts and exchanges."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RELAY_LOG_RETENTION_DAYS)
    done = 0
    for pks in batches(prunable_calls(cutoff), batch):
        with transaction.atomic():
            Exchange.objects.filter(attempt__delivery__in=pks).delete()
            Attempt.objects.filter(delivery__in=pks).delete()
            Delivery.objects.filter(pk__in=pks).delete()
            done += Call.objects.filter(pk__in=pks).delete()[0]
        if progress:
            progress("log entries", done)
    # The 7-day counts need 7 days of hourly buckets.
    EventNameHour.objects.filter(hour__lt=now - timedelta(days=8)).delete()
    # django-q2 keeps failed task results forever.
    Task.objects.filter(stopped__lt=cutoff).delete()
    return done


def prune_rejected(now=None, batch=BATCH, progress=None):
    """Delete rejected messages past RELAY_REJECTED_RETENTION_DAYS; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RELAY_REJECTED_RETENTION_DAYS)
    done = 0
    # In batches: after a flood of bad messages there can be many, and SQLite has one writer.
    for pks in batches(RejectedMessage.objects.filter(received_at__lt=cutoff).order_by("pk"), batch):
        done += RejectedMessage.objects.filter(pk__in=pks).delete()[0]
        if progress:
            progress("rejected messages", done)
    return done


def prune(now=None, progress=None):
    """Payloads first, then log entries, then rejected messages; returns the counts."""
    return {
        "payloads": prune_payloads(now, progress=progress),
        "log_entries": prune_logs(now, progress=progress),
        "rejected": prune_rejected(now, progress=progress),
    }
