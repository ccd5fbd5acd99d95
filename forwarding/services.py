"""The verbs of the delivery engine: accept, deliver, resend, release, sweep."""

import logging
import os
import time
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, F
from django.utils import timezone

from forwarding import claims, event_names, policy, sending, tallies
from forwarding.mapping import map_call
from forwarding.models import Call, CallType, ContactLink, Delivery, EventName, Outcome, State, Trigger, WorkerStart
from forwarding.recording import AttemptLog

logger = logging.getLogger(__name__)

# A rate-limited delivery waits for the window in its task (the limit is shared: no other work could
# be sent meanwhile); any other retry hands the worker back and is enqueued again by the sweeper.
TASK_BUDGET_SECONDS = 40
IN_TASK_WAIT_SECONDS = 15
SWEEP_BATCH = 1000
BATCH_SIZE = 50  # deliveries per task at most
ROUTE_OUTCOMES = {State.HELD: Outcome.HELD, State.SUPPRESSED: Outcome.SUPPRESSED, State.FAILED: Outcome.FAILED}
TERMINAL_OUTCOME_STATES = {
    Outcome.DELIVERED: State.DELIVERED,
    Outcome.WAITING: State.WAITING,
    Outcome.HELD: State.HELD,
    Outcome.SUPPRESSED: State.SUPPRESSED,
    Outcome.SKIPPED: State.SKIPPED,
    Outcome.FAILED: State.FAILED,
}


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
    from django_q.tasks import async_task

    broker = queue_broker()
    # With the ORM broker, one transaction for all the rows (and no reconnect per task).
    batch = transaction.atomic() if broker.__class__.__name__ == "ORM" else nullcontext()
    try:
        with batch:
            for chunk in batches(list(delivery_ids)):
                name = f"deliver-{chunk[0]}" + (f"+{len(chunk) - 1}" if len(chunk) > 1 else "")
                async_task("forwarding.tasks.deliver_many", chunk, task_name=name, save=False, broker=broker)
    except Exception:  # the brokers' errors (redis, database) have no common base class
        logger.warning("task queue unavailable; %d deliveries left to the sweeper", len(delivery_ids))
        Delivery.objects.filter(pk__in=delivery_ids).update(enqueued_at=None)
        return False
    return True


def batches(delivery_ids):
    """The deliveries in tasks of up to BATCH_SIZE, in order, and split so that every worker
    gets one when there are fewer: a task's deliveries share its queue round trip."""
    workers = settings.Q_CLUSTER["workers"]
    size = max(1, min(BATCH_SIZE, -(-len(delivery_ids) // workers)))
    return [delivery_ids[start : start + size] for start in range(0, len(delivery_ids), size)]


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
    """Claim and try each delivery in turn; then hand on to each user's next call where its own
    task found it blocked. What the budget leaves is enqueued again as a task of its own."""
    deadline = time.monotonic() + budget
    users = set()
    for index, pk in enumerate(pks):
        if index and time.monotonic() > deadline:
            enqueue(pks[index:])
            break
        user_id = deliver_one(pk, deadline)
        if user_id:
            users.add(user_id)
    if users:
        kick_next(users)


def deliver_one(pk, deadline):
    """Claim delivery `pk` and try it; a rate-limited retry due within the budget is tried again
    here. Returns the userId it was for, or "" when it was not claimed or anonymous."""
    user_id = ""
    while True:
        delivery = claim(pk)
        if delivery is None:
            return user_id
        changes = attempt(delivery)
        user_id = delivery.user_id
        if changes.get("state") != State.PENDING or changes.get("error_cause") != "rate_limited":
            return user_id
        wait = (changes["next_attempt_at"] - timezone.now()).total_seconds()
        if wait > IN_TASK_WAIT_SECONDS or time.monotonic() + wait > deadline:
            return user_id
        time.sleep(max(wait, 0))


def claim(pk):
    """Take delivery `pk` for this worker with a lease, unless it is not due or an older call of
    the same user goes first (see `claims.CLAIM`). Returns the delivery (with its call) or None."""
    now = timezone.now()
    if not claims.take(pk, now, now + timedelta(seconds=settings.RELAY_LEASE_SECONDS)):
        # Still due, so an older call holds it back: its task ends here, and the older call's
        # worker enqueues it when that one finishes. (Else it is not due, or another worker won.)
        Delivery.objects.filter(pk=pk, state=State.PENDING, next_attempt_at__lte=now).update(enqueued_at=None)
        return None
    return Delivery.objects.select_related("call").get(pk=pk)


def kick_next(user_ids):
    """For each user, enqueue the oldest due delivery if its own task found it blocked (each
    finished delivery hands on to the next; the others still have their task on the queue)."""
    now = timezone.now()
    due = Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    orphaned = set(due.filter(user_id__in=list(user_ids), enqueued_at=None).values_list("user_id", flat=True))
    kicked = []
    for user_id in sorted(orphaned):
        pk = due.filter(user_id=user_id).order_by("created_at", "pk").values_list("pk", flat=True).first()
        if pk is not None and Delivery.objects.filter(pk=pk, enqueued_at=None).update(enqueued_at=now):
            kicked.append(pk)
    if kicked:
        enqueue(kicked)


def attempt(delivery):
    """One try of a claimed delivery: record an attempt and move the delivery to its next state.
    Returns the delivery's changed fields."""
    call = delivery.call
    trigger = delivery.trigger
    if call.payload is None:
        return finish(delivery, None, sending.Result(Outcome.FAILED, error="payload expired", cause="expired"))
    user_id = attribute(delivery, call)
    mapped = map_call(call.payload, user_id=user_id or None, page_event_name=settings.INTERCOM_PAGE_EVENT_NAME)
    if mapped.skip_reason:
        return finish(delivery, None, sending.Result(Outcome.SKIPPED, error=mapped.skip_reason, cause="skipped"))
    if not user_id:
        reason = "anonymous call: waiting for an identify with this anonymousId"
        return finish(delivery, None, sending.Result(Outcome.WAITING, error=reason, cause="anonymous"))
    route = None
    if delivery.event_key:
        route = event_names.route(delivery.event_key, forced=trigger == Trigger.MANUAL)
        if route.state:
            outcome = ROUTE_OUTCOMES[route.state]
            return finish(delivery, None, sending.Result(outcome, error=route.reason, cause=f"name_{route.state}"))
        mapped = map_call(call.payload, user_id=user_id, event_name=route.name, page_event_name=route.name)
    log = AttemptLog(delivery, trigger)
    try:
        result = sending.send(log, mapped, user_id)
    except Exception as exc:  # a bug: recorded as an outcome and retried on the schedule
        logger.exception("delivery %s failed with an exception", delivery.pk)
        result = sending.Result(Outcome.ERROR, error=f"{exc.__class__.__name__}: {exc}"[:500], cause="relay_error")
    if route is not None and route.warning:
        result.warnings.append(route.warning)
    changes = finish(delivery, log, result)
    if result.outcome == Outcome.WAITING and ContactLink.objects.filter(user_id=user_id).exists():
        # The identify succeeded while this attempt was looking: its release missed this one.
        release_user(user_id)
    if result.outcome == Outcome.HELD and route is not None:
        event_names.refused_by_intercom(delivery.event_key, route.name)
    if result.outcome == Outcome.DELIVERED and call.type == CallType.IDENTIFY:
        release_user(user_id, call.anonymous_id)
    return changes


def attribute(delivery, call):
    """The userId a call is forwarded for; an anonymous call takes the userId of an identify
    that carried the same anonymousId."""
    if delivery.user_id or not call.anonymous_id:
        return delivery.user_id
    linked = (
        Call.objects.filter(anonymous_id=call.anonymous_id, type=CallType.IDENTIFY)
        .exclude(user_id="")
        .order_by("received_at")
        .values_list("user_id", flat=True)
        .first()
    )
    if linked:
        Delivery.objects.filter(pk=delivery.pk).update(user_id=linked)
        delivery.user_id = linked
    return linked or ""


def finish(delivery, log, result):
    """Write the attempt's outcome and the delivery's next state; returns the changed fields."""
    now = timezone.now()
    changes = {
        "lease_expires_at": None,
        "updated_at": now,
        "trigger": Trigger.AUTO,
        "warnings": result.warnings,
        "last_status": result.status,
    }
    state = TERMINAL_OUTCOME_STATES.get(result.outcome)
    if state is not None:
        changes.update(state=state, last_error=result.error[:500], error_cause=result.cause)
        if state == State.DELIVERED:
            changes.update(delivered_at=now, last_error="", error_cause="")
    else:
        changes.update(next_state(delivery, result, now))
    # One transaction: nobody sees the attempt's outcome without the delivery's new state.
    with transaction.atomic():
        if log is not None:
            changes["attempt_count"] = delivery.attempt_count + 1
            log.finish(result.outcome, result.status, result.error, result.warnings)
        Delivery.objects.filter(pk=delivery.pk).update(**changes)
        event_names.count_outcome(delivery.event_key, delivery.state, changes.get("state", delivery.state))
    return changes


def next_state(delivery, result, now):
    """Field changes for an attempt that will be tried again (or has used up its retries)."""
    common = {"last_error": result.error[:500], "error_cause": result.cause}
    if result.outcome == Outcome.RATE_LIMITED:
        return {**common, "state": State.PENDING, "next_attempt_at": policy.after(result.wait_seconds, now)}
    if result.outcome == Outcome.AUTH:
        # The token is refused: wait and try again slowly, never drop.
        return {
            **common,
            "state": State.PENDING,
            "next_attempt_at": policy.after(settings.RELAY_AUTH_RETRY_SECONDS, now),
        }
    retry_count = delivery.retry_count + 1
    delay = policy.retry_delay(retry_count)
    if delay is None:
        return {**common, "state": State.FAILED, "last_error": f"retries used up: {result.error}"[:500]}
    return {**common, "state": State.PENDING, "retry_count": retry_count, "next_attempt_at": policy.after(delay, now)}


def release_user(user_id, anonymous_id=""):
    """After a successful identify: the user's waiting deliveries (and anonymous ones with the
    same anonymousId) become due, in the order received."""
    now = timezone.now()
    Delivery.objects.filter(user_id=user_id, state=State.WAITING).update(
        state=State.PENDING, next_attempt_at=now, trigger=Trigger.RELEASE, enqueued_at=None, updated_at=now
    )
    if anonymous_id:
        Delivery.objects.filter(anonymous_id=anonymous_id, user_id="", state=State.WAITING).update(
            user_id=user_id,
            state=State.PENDING,
            next_attempt_at=now,
            trigger=Trigger.RELEASE,
            enqueued_at=None,
            updated_at=now,
        )


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
    that retries are enqueued within `interval` of being due)."""
    deadline = time.monotonic() + seconds
    totals = {}
    while True:
        for key, value in sweep().items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
        if time.monotonic() + interval > deadline:
            return totals
        time.sleep(interval)


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
