"""The verbs of the delivery engine: accept, deliver, resend, release, sweep."""

import logging
import os
import time
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from forwarding import attempts, claims, event_names, ratelimit, sending, tallies, watchdog, workspace
from forwarding.journal import Journal
from forwarding.models import Attempt, Call, Delivery, EventName, State, SweepRun, Trigger, WorkerStart
from forwarding.recording import AttemptLog

logger = logging.getLogger(__name__)

# A rate-limited delivery waits for the window in its task (the limit is shared: no other work could
# be sent meanwhile); any other retry hands the worker back and is enqueued again by the sweeper.
TASK_BUDGET_SECONDS = 40
IN_TASK_WAIT_SECONDS = 15
SWEEP_BATCH = 1000
BATCH_SIZE = 50  # deliveries per task at most
KICK_AHEAD = 10  # a user's due deliveries handed on together (see `kick_next`)
SWEEP_QUEUED_BEHIND = 5  # seconds after a sweep ends in which another one is a queued duplicate


def accept(calls):
    """Create one pending delivery per newly stored call; enqueue them once committed.

    Called inside the ingestion transaction, right after the calls are inserted.
    """
    now = timezone.now()
    keys = event_names.record_arrivals(calls)
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
    ]
    Delivery.objects.bulk_create(deliveries)
    ids = [call.pk for call in calls]
    if ids:
        # robust: the calls are committed; a failed enqueue is the sweeper's to repair.
        transaction.on_commit(lambda: enqueue(ids), robust=True)
    return deliveries


def enqueue(delivery_ids):
    """Put the deliveries on the queue, a task per batch (see `batches`). A broker that is down (a
    Redis restart) is logged, not raised: the deliveries are stored and the sweeper enqueues them
    again."""
    return enqueue_tasks(batches(list(delivery_ids)))


def enqueue_tasks(tasks):
    """Put each list of deliveries on the queue as one task (see `enqueue`)."""
    from django_q.tasks import async_task

    broker = queue_broker()
    # With the ORM broker, one transaction for all the rows (and no reconnect per task).
    batch = transaction.atomic() if broker.__class__.__name__ == "ORM" else nullcontext()
    try:
        with batch:
            for chunk in tasks:
                name = f"deliver-{chunk[0]}" + (f"+{len(chunk) - 1}" if len(chunk) > 1 else "")
                async_task("forwarding.tasks.deliver_many", chunk, task_name=name, save=False, broker=broker)
    except Exception:  # the brokers' errors (redis, database) have no common base class
        pks = [pk for chunk in tasks for pk in chunk]
        logger.warning("task queue unavailable; %d deliveries left to the sweeper", len(pks))
        Delivery.objects.filter(pk__in=pks).update(enqueued_at=None)
        return False
    return True


def batches(delivery_ids):
    """The deliveries in tasks of up to BATCH_SIZE, in order, and split so that every worker
    gets one when there are fewer: a task's deliveries share its queue round trip."""
    size = task_size(len(delivery_ids))
    return [delivery_ids[start : start + size] for start in range(0, len(delivery_ids), size)]


def packed(groups):
    """Groups of deliveries (each one user's, in order) in tasks sized as `batches` sizes them,
    a group never split: a task delivers a user's calls in order, where a task each would chase
    the one before it."""
    size = task_size(sum(map(len, groups)))
    tasks = [[]]
    for group in groups:
        if tasks[-1] and len(tasks[-1]) + len(group) > size:
            tasks.append([])
        tasks[-1] += group
    return [task for task in tasks if task]


def task_size(count):
    workers = settings.Q_CLUSTER["workers"]
    return max(1, min(BATCH_SIZE, -(-count // workers)))


_broker = (None, None)


def queue_broker():
    """This process's django-q2 broker (one connection, not one per task)."""
    global _broker
    from django_q.brokers import get_broker

    pid, broker = _broker
    if pid != os.getpid():
        broker = get_broker()
        _broker = (os.getpid(), broker)
    return broker


def deliver(pk, budget=TASK_BUDGET_SECONDS):
    """Deliver one delivery (see `deliver_many`)."""
    deliver_many([pk], budget)


def deliver_many(pks, budget=TASK_BUDGET_SECONDS):
    """Claim the deliveries together and try them in order. A user's later call that an earlier
    one of the same task held back is claimed again once that one is done; a rate-limited one
    due within the budget is tried again here. Then hand on to each user's next call where its
    own task found it blocked. What the budget leaves is enqueued again as a task of its own."""
    deadline = time.monotonic() + budget
    users, retry, left = set(), [], list(pks)
    try:
        while left:
            deliveries, lease_until = claim(left)
            if not deliveries:
                break
            taken = {delivery.pk for delivery in deliveries}
            left = [pk for pk in left if pk not in taken]
            untried = run(deliveries, lease_until, deadline, users, retry)
            if untried:
                enqueue(untried)
            if untried or time.monotonic() > deadline:
                break
        held_back(left)
        for pk in retry:
            if time.monotonic() < deadline:
                users.add(deliver_one(pk, deadline))
    finally:
        ratelimit.give_back()
    users.discard("")
    if users:
        kick_next(users)


def run(deliveries, lease_until, deadline, users, retry):
    """Try claimed deliveries in order, with what they need fetched together and the delivered
    ones recorded together (see `journal`). Adds their users to `users` and the rate-limited
    ones to `retry`; returns the pks given back untried when the budget ran out."""
    names = event_names.entries({delivery.event_key for delivery in deliveries if delivery.event_key})
    plans = []
    for delivery in deliveries:
        planned = attempts.plan(delivery, names)
        if isinstance(planned, attempts.Plan):
            plans.append(planned)
        users.add(delivery.user_id)
    found = workspace.checked() if plans else None
    users_of = {planned.user_id for planned in plans}
    contacts = sending.linked_contacts(found, users_of) if isinstance(found, str) else {}
    begun = Journal.begin([planned.delivery for planned in plans])
    records = Journal()
    try:
        for index, planned in enumerate(plans):
            delivery = planned.delivery
            if index and time.monotonic() > deadline:
                return give_back([later.delivery.pk for later in plans[index:]], begun, lease_until)
            log = AttemptLog(delivery, delivery.trigger, begun[delivery.pk], contacts)
            changes = attempts.send(planned, log, records)
            if rate_limited(changes):
                retry.append(delivery.pk)
    finally:
        records.flush()
    return []


def rate_limited(changes):
    """Whether an attempt's changes put its delivery back to wait for the rate limit."""
    return changes.get("state") == State.PENDING and changes.get("error_cause") == "rate_limited"


def give_back(pks, begun, lease_until):
    """Deliveries a task claimed and did not try: pending again, and their attempts unmade."""
    Attempt.objects.filter(pk__in=[begun[pk].pk for pk in pks]).delete()
    claims.give_back(pks, timezone.now(), lease_until)
    return pks


def deliver_one(pk, deadline):
    """Claim delivery `pk` and try it; a rate-limited retry due within the budget is tried again
    here. Returns the userId it was for, or "" when it was not claimed or anonymous."""
    user_id = ""
    while True:
        deliveries, _ = claim([pk])
        if not deliveries:
            held_back([pk])
            return user_id
        delivery = deliveries[0]
        changes = attempts.attempt(delivery)
        user_id = delivery.user_id
        if not rate_limited(changes):
            return user_id
        wait = (changes["next_attempt_at"] - timezone.now()).total_seconds()
        if wait > IN_TASK_WAIT_SECONDS or time.monotonic() + wait > deadline:
            return user_id
        time.sleep(max(wait, 0))


def claim(pks):
    """Take the deliveries `pks` for this worker under one lease, but not those not due or held
    back by an older call of the same user (see `claims.CLAIM`). Returns the deliveries taken
    (with their calls, in the order of `pks`) and the lease's end."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.RELAY_LEASE_SECONDS)
    taken = claims.take(pks, now, lease_until)
    rows = Delivery.objects.select_related("call").in_bulk(list(taken)) if taken else {}
    return [rows[pk] for pk in pks if pk in rows], lease_until


def held_back(pks):
    """Deliveries a task could not claim: those still due are held back by an older call of their
    user, and their task ends here; the older call's worker hands them on when that one is done
    (`kick_next`). (The others are not due, or another worker has them.)"""
    if pks:
        Delivery.objects.filter(pk__in=pks, state=State.PENDING, next_attempt_at__lte=timezone.now()).update(
            enqueued_at=None
        )


def kick_next(user_ids):
    """For each user with a due delivery that its own task found blocked (and so left with no
    task), enqueue the user's next KICK_AHEAD due deliveries together, in one task. The later ones
    may still have a task on the queue; it finds them delivered."""
    now = timezone.now()
    due = Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    orphaned = set(due.filter(user_id__in=list(user_ids), enqueued_at=None).values_list("user_id", flat=True))
    groups = []
    for user_id in sorted(orphaned):
        pks = list(due.filter(user_id=user_id).order_by("created_at", "pk").values_list("pk", flat=True)[:KICK_AHEAD])
        # One worker hands each on: the one whose UPDATE finds it still without a task.
        if pks and Delivery.objects.filter(pk__in=pks, enqueued_at=None).update(enqueued_at=now):
            groups.append(pks)
    if groups:
        enqueue_tasks(packed(groups))


def resend(delivery, trigger=Trigger.MANUAL):
    """Try a delivery again now, keeping its call and created_at (Intercom dedups the event).
    False when it cannot be: in flight, or its payload is gone (see `resend_refusal`)."""
    return reopen([delivery.pk], trigger) == 1


def resend_refusal(call):
    """Why a call cannot be resent, or "" when it can."""
    if call.payload is None:
        when = f" on {call.payload_removed_at:%Y-%m-%d}" if call.payload_removed_at else ""
        return f"its payload was removed{when} ({call.payload_removed_reason or 'retention'}): nothing left to send"
    return ""


def expunge(call, reason):
    """Remove a call's personal data (payload, email, exchange bodies); the attempt history stays."""
    from forwarding.models import Exchange

    now = timezone.now()
    with transaction.atomic():
        Call.objects.filter(pk=call.pk).update(
            payload=None, email="", payload_removed_at=now, payload_removed_reason=reason
        )
        Exchange.objects.filter(attempt__delivery_id=call.pk).update(
            request_body="[expunged]", response_body="[expunged]"
        )


def reopen(pks, trigger):
    """Make deliveries due now (in the order given), keeping their history, and enqueue them
    once committed. A delivery in flight is left alone. Returns how many were reopened."""
    now = timezone.now()
    reopened = 0
    for start in range(0, len(pks), SWEEP_BATCH):
        chunk = pks[start : start + SWEEP_BATCH]
        with transaction.atomic():
            # A delivery in flight is its worker's; one whose payload is gone has nothing to send.
            rows = (
                Delivery.objects.filter(pk__in=chunk)
                .exclude(state=State.DELIVERING)
                .exclude(call__payload__isnull=True)
            )
            held = dict(rows.filter(state=State.HELD).values_list("event_key").annotate(n=Count("pk")))
            ids = set(rows.values_list("pk", flat=True))
            rows.update(
                state=State.PENDING,
                next_attempt_at=now,
                retry_count=0,
                trigger=trigger,
                enqueued_at=now,
                updated_at=now,
            )
            for event_key, count in held.items():
                EventName.objects.filter(key=event_key).update(held_count=F("held_count") - count)
            ordered = [pk for pk in chunk if pk in ids]
            transaction.on_commit(lambda ordered=ordered: enqueue(ordered), robust=True)
        reopened += len(ordered)
    return reopened


def worker_started(**kwargs):
    """django-q2's post_spawn: a worker process (re)started; what was enqueued before may be lost."""
    try:
        WorkerStart.objects.update_or_create(name="workers", defaults={"started_at": timezone.now()})
    except DatabaseError:
        logger.warning("could not record a worker start", exc_info=True)


def lost_tasks(now):
    """Due deliveries whose task seems lost: for each user only the oldest (the others are
    blocked behind it and follow when it finishes), unless it was enqueued a moment ago and no
    worker has restarted since."""
    grace = now - timedelta(seconds=settings.RELAY_REENQUEUE_AFTER)
    restart = WorkerStart.objects.values_list("started_at", flat=True).first()
    if restart is not None and grace < restart <= now:
        grace = restart
    candidates = (
        Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("created_at", "pk")
        .values_list("pk", "user_id", "enqueued_at", "next_attempt_at")[: SWEEP_BATCH * 5]
    )
    due, users = [], set()
    for pk, user_id, enqueued_at, next_attempt_at in candidates:
        if user_id:
            if user_id in users:
                continue
            users.add(user_id)
        if enqueued_at is None or enqueued_at < grace or enqueued_at < next_attempt_at:
            due.append(pk)
    return due[:SWEEP_BATCH]


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
    waiting deliveries past RELAY_WAIT_FOR_IDENTIFY. Returns counts."""
    now = now or timezone.now()
    expired = Delivery.objects.filter(state=State.DELIVERING, lease_expires_at__lt=now).update(
        state=State.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now
    )
    due = lost_tasks(now)
    if due:
        Delivery.objects.filter(pk__in=due).update(enqueued_at=now)
        enqueue(due)
    cutoff = now - timedelta(seconds=settings.RELAY_WAIT_FOR_IDENTIFY)
    expired_waits = Delivery.objects.filter(state=State.WAITING, created_at__lt=cutoff).update(
        state=State.FAILED,
        last_error=f"no identify for this user within RELAY_WAIT_FOR_IDENTIFY ({settings.RELAY_WAIT_FOR_IDENTIFY} s)",
        error_cause="wait_expired",
        updated_at=now,
    )
    released = []
    if EventName.objects.filter(held_count__gt=0).exists() and not event_names.usage().full:
        released = event_names.release_held()  # the limit was raised
    tallies.fold(now)
    return {"leases_expired": expired, "enqueued": len(due), "waits_expired": expired_waits, "released": released}
