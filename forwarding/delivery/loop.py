"""The task loop: a task's deliveries claimed together under a lease, tried in order (a user's
later call once the earlier is done), the delivered ones written together, then its users' calls
that no task holds (`carry_on`), and what is left handed on."""

import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from forwarding import event_names
from forwarding.delivery import attempt, leases, limiter, queue, sequence, workspace
from forwarding.delivery.buffer import OutcomeBuffer
from forwarding.delivery.exchanges import AttemptLog
from forwarding.models import Attempt, Delivery, State
from forwarding.transformations import store

# A rate-limited delivery waits for the window in its task (the limit is shared: no other work could
# be sent meanwhile); any other retry hands the worker back and is enqueued again by the sweeper.
TASK_BUDGET_SECONDS = 40
IN_TASK_WAIT_SECONDS = 15
KICK_AHEAD = 10  # a user's due deliveries handed on together (see `kick_next`, `carry_on`)
CARRY_ON_SECONDS = 2.0  # how long a task goes on with its users' calls no task holds (see `carry_on`)


def deliver(pk, budget=TASK_BUDGET_SECONDS):
    """Deliver one delivery (see `deliver_many`)."""
    deliver_many([pk], budget)


def deliver_many(pks, budget=TASK_BUDGET_SECONDS):
    """Claim the deliveries together and try them in order. A user's later call that an earlier
    one of the same task held back is claimed again once that one is done; a rate-limited one
    due within the budget is tried again here. Then deliver the users' next calls that their own
    tasks found blocked, for a moment (`carry_on`), and hand on what is left of them. What the
    budget leaves is enqueued again as a task of its own."""
    deadline = time.monotonic() + budget
    users, retry, settled = set(), [], False
    try:
        if in_turn(list(pks), deadline, users, retry) and not retry:
            settled = carry_on(users, min(deadline, time.monotonic() + CARRY_ON_SECONDS), deadline, retry)
        for pk in retry:
            if time.monotonic() < deadline:
                users.add(deliver_one(pk, deadline))
    finally:
        limiter.give_back()
    users.discard("")
    if users and not settled:  # carry_on just found none of them with a call to hand on
        kick_next(users)


def in_turn(pks, deadline, users, retry):
    """Claim and try the deliveries `pks` in order, claiming again those an earlier one held back
    once it is done (see `run` for `users` and `retry`); those still held back are let go
    (`held_back`). Returns whether the budget is left: what it did not cover is enqueued again."""
    left, untried = pks, []
    while left:
        deliveries, lease_until = claim(left)
        if not deliveries:
            break
        taken = {delivery.pk for delivery in deliveries}
        left = [pk for pk in left if pk not in taken]
        untried = run(deliveries, lease_until, deadline, users, retry)
        if untried:
            queue.enqueue(untried)
        if untried or time.monotonic() > deadline:
            break
    users |= held_back(left)
    return not untried and time.monotonic() <= deadline


def carry_on(users, until, deadline, retry):
    """Until `until`, deliver here what `kick_next` would hand on for the users this task reached
    (their next calls that no task holds), round after round, and add the users reached to
    `users`. Handed on, those calls went to the back of the queue: after an outage, behind
    hundreds of tasks queued long before, each of which found its call held back by the one
    before and let it go; on SQLite four workers then went through them for seconds delivering
    nothing. A user whose next calls all still have a task queued is left to those tasks. Stops
    at a rate-limited call (`retry`) or when the budget runs out. Returns whether its first look
    found nothing (then `kick_next` would look at the same users for nothing)."""
    reached, first = set(users), True
    while time.monotonic() < until:
        groups = orphans(reached - {""})
        if not groups:
            return first
        reached, first = set(), False
        going = in_turn([pk for pks in groups for pk in pks], deadline, reached, retry)
        users |= reached
        if not going or retry:
            return False
    return False


def run(deliveries, lease_until, deadline, users, retry):
    """Try claimed deliveries in order, with what they need fetched together and the delivered
    ones recorded together (see `buffer`). Adds their users to `users` and the rate-limited
    ones to `retry`; returns the pks given back untried when the budget ran out."""
    names = event_names.entries({delivery.event_key for delivery in deliveries if delivery.event_key})
    rules = store.current()  # one small read per task; the rules are compiled once per change
    plans = []
    for delivery in deliveries:
        planned = attempt.plan(delivery, names, rules)
        if isinstance(planned, attempt.Plan):
            plans.append(planned)
        users.add(delivery.user_id)
    found = workspace.checked() if plans else None
    users_of = {planned.user_id for planned in plans}
    contacts = sequence.linked_contacts(found, users_of) if isinstance(found, str) else {}
    begun = OutcomeBuffer.begin([planned.delivery for planned in plans])
    records = OutcomeBuffer()
    try:
        for index, planned in enumerate(plans):
            delivery = planned.delivery
            if index and time.monotonic() > deadline:
                return give_back([later.delivery.pk for later in plans[index:]], begun, lease_until)
            log = AttemptLog(delivery, delivery.trigger, begun[delivery.pk], contacts)
            changes = attempt.send(planned, log, records)
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
    leases.give_back(pks, timezone.now(), lease_until)
    return pks


def deliver_one(pk, deadline):
    """Claim delivery `pk` and try it; a rate-limited retry due within the budget is tried again
    here. Returns the userId it was for, or "" when it was not claimed or anonymous."""
    user_id = ""
    while True:
        deliveries, _ = claim([pk])
        if not deliveries:
            freed = held_back([pk])
            return freed.pop() if freed else user_id
        delivery = deliveries[0]
        changes = attempt.attempt(delivery)
        user_id = delivery.user_id
        if not rate_limited(changes):
            return user_id
        wait = (changes["next_attempt_at"] - timezone.now()).total_seconds()
        if wait > IN_TASK_WAIT_SECONDS or time.monotonic() + wait > deadline:
            return user_id
        time.sleep(max(wait, 0))


def claim(pks):
    """Take the deliveries `pks` for this worker under one lease, but not those not due or held
    back by an older call of the same user (see `leases.CLAIM`). Returns the deliveries taken
    (with their calls, in the order of `pks`) and the lease's end."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.RELAY_LEASE_SECONDS)
    taken = leases.take(pks, now, lease_until)
    rows = Delivery.objects.select_related("call").in_bulk(list(taken)) if taken else {}
    return [rows[pk] for pk in pks if pk in rows], lease_until


def held_back(pks):
    """Deliveries a task could not claim: those still due are held back by an older call of their
    user, and their task ends here; the older call's worker hands them on when that one is done
    (`kick_next`). (The others are not due, or another worker has them.) Returns the users whose
    older call finished meanwhile: its worker looked before this task let go, so it did not see
    them, and `kick_next` must hand them on here."""
    if not pks:
        return set()
    Delivery.objects.filter(pk__in=pks, state=State.PENDING, next_attempt_at__lte=timezone.now()).update(
        enqueued_at=None
    )
    blocking = Delivery.objects.filter(
        Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")),
        user_id=OuterRef("user_id"),
        state__in=(State.PENDING, State.DELIVERING),
        retry_count=0,
    )
    free = Delivery.objects.filter(pk__in=pks, state=State.PENDING, enqueued_at=None).exclude(user_id="")
    return set(free.exclude(Exists(blocking)).values_list("user_id", flat=True))


def kick_next(user_ids):
    """Enqueue the users' calls that no task holds (`orphans`), each user's in one task."""
    groups = orphans(user_ids)
    if groups:
        queue.enqueue_tasks(queue.packed(groups))


def orphans(user_ids):
    """For each user with a due delivery that its own task found blocked (and so left with no
    task), the user's next KICK_AHEAD due deliveries, taken for a task: [[pks], ...]. The later
    ones may still have a task on the queue; it finds them delivered."""
    now = timezone.now()
    due = Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    orphaned = set(due.filter(user_id__in=list(user_ids), enqueued_at=None).values_list("user_id", flat=True))
    groups = []
    for _, pks in sorted(leases.next_due(orphaned, now, KICK_AHEAD).items()):
        # One worker takes each on: the one whose UPDATE finds it still without a task.
        if Delivery.objects.filter(pk__in=pks, enqueued_at=None).update(enqueued_at=now):
            groups.append(pks)
    return groups
