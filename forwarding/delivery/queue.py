"""The task queue's plumbing: deliveries put on django-q2's queue as tasks of up to BATCH_SIZE,
and deliveries made due again (resend, release) and enqueued once committed. The database is the
source of truth; the queue only a trigger (a lost task is the sweeper's to repair)."""

import logging
import os
from contextlib import nullcontext

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from forwarding.models import Delivery, EventName, State

logger = logging.getLogger(__name__)

BATCH_SIZE = 50  # deliveries per task at most
REOPEN_CHUNK = 1000  # deliveries made due again in one transaction
DELIVER_TASK = "forwarding.tasks.deliver_many"
# Tasks the sweeper reads from the queue to tell lost deliveries from waiting ones: 2,000 tasks
# hold 50,000-100,000 deliveries, the oldest, those the sweeper looks at first.
WAITING_TASKS_READ = 2000


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
    batch = transaction.atomic() if in_the_database(broker) else nullcontext()
    try:
        with batch:
            for chunk in tasks:
                name = f"deliver-{chunk[0]}" + (f"+{len(chunk) - 1}" if len(chunk) > 1 else "")
                async_task(DELIVER_TASK, chunk, task_name=name, save=False, broker=broker)
    except Exception:  # the brokers' errors (redis, database) have no common base class
        pks = [pk for chunk in tasks for pk in chunk]
        logger.warning("task queue unavailable; %d deliveries left to the sweeper", len(pks))
        Delivery.objects.filter(pk__in=pks).update(enqueued_at=None)
        return False
    return True


def waiting(limit=WAITING_TASKS_READ):
    """The deliveries of the oldest `limit` tasks still waiting in the queue, taken by no worker
    (their calls are not lost: a worker will take them). Tasks a worker took, and that died with
    it, are not among them. Empty when the queue cannot be read (it is down: nothing is known)."""
    from django_q.signing import BadSignature, SignedPackage

    broker = queue_broker()
    try:
        if in_the_database(broker):
            payloads = (
                broker.get_connection()
                .filter(key=broker.list_key, lock__lte=timezone.now())
                .order_by("pk")
                .values_list("payload", flat=True)[:limit]
            )
        else:
            payloads = broker.connection.lrange(broker.list_key, 0, limit - 1)
        payloads = list(payloads)
    except Exception:  # the brokers' errors (redis, database) have no common base class
        logger.warning("task queue unreadable; its tasks are taken for lost", exc_info=True)
        return set()
    pks = set()
    for payload in payloads:
        try:
            task = SignedPackage.loads(payload)
        except (BadSignature, ValueError, TypeError):
            continue  # another secret's, or not django-q2's: not ours to read
        if task.get("func") == DELIVER_TASK and task.get("args"):
            pks.update(task["args"][0])
    return pks


def in_the_database(broker=None):
    """Whether the queue is a table of the relay's database (django-q2's ORM broker): its tasks can
    then be written in the transaction that stores their deliveries, and become visible with it."""
    from django_q.brokers.orm import ORM

    return isinstance(broker or queue_broker(), ORM)


def enqueue_with_commit(delivery_ids):
    """Enqueue the deliveries of the current transaction so that their tasks appear when it
    commits: in the same transaction with the ORM broker (on SQLite, one write lock taken per
    request instead of two), else once committed (a worker must never take a task before its
    delivery is visible). A failed enqueue is the sweeper's to repair, never the calls' loss."""
    if in_the_database() and transaction.get_connection().in_atomic_block:
        enqueue(delivery_ids)
    else:
        transaction.on_commit(lambda: enqueue(delivery_ids), robust=True)


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


def reopen(pks, trigger):
    """Make deliveries due now (in the order given), keeping their history, and enqueue them
    once committed. A delivery in flight is left alone. Returns how many were reopened."""
    now = timezone.now()
    reopened = 0
    for start in range(0, len(pks), REOPEN_CHUNK):
        chunk = pks[start : start + REOPEN_CHUNK]
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
