"""The sweeper: every RELAY_SWEEP_INTERVAL it returns expired leases to pending, re-enqueues due
deliveries whose task was lost, fails waits past RELAY_WAIT_FOR_IDENTIFY (in slices), releases
held names when the limit was raised and folds the tallies. One sweep runs at a time."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from forwarding import event_names, tallies, write_lock
from forwarding.delivery import queue, watchdog
from forwarding.models import Delivery, EventName, State, SweepRun, WorkerStart

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
# Waits failed per transaction: a million at once held SQLite's write lock for seconds (ingestion
# stalled behind it) and PostgreSQL's row locks on all of them. A slice of 1,000 took 0.1-0.6 s
# at a million calls on SQLite (six indexes and two tally rows per delivery changed).
EXPIRE_SLICE = 250
EXPIRE_PASS_SECONDS = 2.0  # a sweep fails waits for about this long; the rest are the next sweep's
SWEEP_QUEUED_BEHIND = 5  # seconds after a sweep ends in which another one is a queued duplicate


def lost_tasks(now):
    """Due deliveries whose task seems lost: for each user only the oldest (the others are
    blocked behind it and follow when it finishes), unless it was enqueued a moment ago and no
    worker has restarted since, or its task still waits in the queue (a deep backlog, or tasks
    queued before the workers started: those are not lost, and enqueuing them again would only
    make the workers go through duplicates)."""
    grace = now - timedelta(seconds=settings.RELAY_REENQUEUE_AFTER)
    restart = WorkerStart.objects.values_list("started_at", flat=True).first()
    if restart is not None and grace < restart <= now:
        grace = restart
    candidates = (
        Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("created_at", "pk")
        .values_list("pk", "user_id", "enqueued_at", "next_attempt_at")[: SWEEP_BATCH * 5]
    )
    due, stale, users = [], set(), set()
    for pk, user_id, enqueued_at, next_attempt_at in candidates:
        if user_id:
            if user_id in users:
                continue
            users.add(user_id)
        if enqueued_at is None or enqueued_at < next_attempt_at:
            due.append(pk)  # never enqueued, or due again since (a retry)
        elif enqueued_at < grace:
            due.append(pk)
            stale.add(pk)  # enqueued long ago, or before a restart: its task may be lost
    if stale:
        waiting = queue.waiting() & stale
        due = [pk for pk in due if pk not in waiting]
    return due[:SWEEP_BATCH]


def mark_enqueued(pks, now):
    """Mark the deliveries enqueued now, those no other transaction holds: a worker's transaction
    locking some of them while it waits for one this sweep locked would deadlock with a plain
    UPDATE (PostgreSQL). Those skipped are being worked on, or are the next sweep's. Returns the
    pks marked, in the order given."""
    with transaction.atomic():
        free = set(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=pks)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=free).update(enqueued_at=now)
    return [pk for pk in pks if pk in free]


def sweep_for(seconds, interval):
    """Sweep every `interval` seconds for `seconds` (the schedule starts this once a minute, so
    that retries are enqueued within `interval` of being due). Only one runs at a time, and one
    queued behind it does nothing: after a stall, the schedule's queued sweeps must not hold every
    worker in turn."""
    if not start_sweep(seconds):
        return {"skipped": "a sweep runs, or has just run"}
    deadline = time.monotonic() + seconds
    totals = {}
    try:
        while True:
            for key, value in sweep().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
            watchdog.beat()
            if time.monotonic() + interval > deadline:
                return totals
            time.sleep(interval)
    finally:
        SweepRun.objects.filter(name="sweep").update(lease_until=timezone.now())


def start_sweep(seconds):
    """Take the sweeper's run, unless one holds it or one ended a moment ago (a sweep queued
    behind it: the schedule's next comes about ten seconds after one ends)."""
    now = timezone.now()
    SweepRun.objects.get_or_create(name="sweep")
    free = Q(lease_until=None) | Q(lease_until__lt=now - timedelta(seconds=SWEEP_QUEUED_BEHIND))
    lease = now + timedelta(seconds=seconds + 30)  # a worker killed mid-sweep frees it soon after
    return SweepRun.objects.filter(free, name="sweep").update(started_at=now, lease_until=lease) == 1


def sweep(now=None):
    """Return expired leases to pending, re-enqueue due deliveries whose task was lost, and fail
    waiting deliveries past RELAY_WAIT_FOR_IDENTIFY (those a pass has no time for, the next).
    Returns counts."""
    now = now or timezone.now()
    expired = Delivery.objects.filter(state=State.DELIVERING, lease_expires_at__lt=now).update(
        state=State.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now
    )
    due = lost_tasks(now)
    if due:
        due = mark_enqueued(due, now)
        queue.enqueue(due)
    expired_waits = expire_waits(now)
    released = []
    if EventName.objects.filter(held_count__gt=0).exists() and not event_names.usage().full:
        released = event_names.release_held()  # the limit was raised
    tallies.fold(now)
    return {"leases_expired": expired, "enqueued": len(due), "waits_expired": expired_waits, "released": released}


def expire_waits(now, slice_size=EXPIRE_SLICE, budget=EXPIRE_PASS_SECONDS):
    """Fail waiting deliveries past RELAY_WAIT_FOR_IDENTIFY, oldest first, `slice_size` in each
    short transaction, for about `budget` seconds at most. Returns how many were failed."""
    cutoff = now - timedelta(seconds=settings.RELAY_WAIT_FOR_IDENTIFY)
    error = f"no identify for this user within RELAY_WAIT_FOR_IDENTIFY ({settings.RELAY_WAIT_FOR_IDENTIFY} s)"
    deadline = time.monotonic() + budget
    expired = 0
    while True:
        began = time.monotonic()
        with transaction.atomic():
            # Rows a worker holds (an identify releasing them) are skipped: the next slice's.
            pks = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(state=State.WAITING, created_at__lt=cutoff)
                .order_by("created_at")
                .values_list("pk", flat=True)[:slice_size]
            )
            if pks:
                # By pk alone: with `state` too, SQLite scanned every waiting row on its state index.
                # The rows cannot have changed meanwhile: locked (PostgreSQL), or the write lock held.
                expired += Delivery.objects.filter(pk__in=pks).update(
                    state=State.FAILED, last_error=error, error_cause="wait_expired", updated_at=now
                )
        if len(pks) < slice_size or time.monotonic() > deadline:
            return expired
        write_lock.leave_free(began)
