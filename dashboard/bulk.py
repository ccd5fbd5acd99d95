"""Bulk resend: count what a log filter matches, then make it due again in slices, oldest first,
through forwarding.queue.reopen. A slice is one short task; the job row keeps the position, so a
lost task or a restart only delays it (the resume schedule picks it up again)."""

import time
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.filters import LogFilter
from dashboard.models import BulkResend, JobStatus
from dashboard.queries import log, resends
from forwarding.delivery import queue
from forwarding.models import State, Trigger

CHUNK = 500
# A slice stays well inside django-q2's task timeout (60 s), then hands on to a new task.
SLICE_SECONDS = 20
LEASE = timedelta(seconds=90)
# An open job nobody has touched for this long lost its task.
STALLED_AFTER = timedelta(seconds=60)


def create(log_filter, user=None, now=None):
    """A queued job for what `log_filter` matches now (calls arriving later are left out)."""
    now = now or timezone.now()
    resolved = log_filter.resolved(now)
    bound = resends.snapshot_bound() or (now, 0)
    return BulkResend.objects.create(
        filters=resolved.to_dict(),
        description=resolved.describe(log.sources() if resolved.source is not None else None)[:500],
        created_by=user,
        created_at=now,
        total=resends.total(resolved, now, bound),
        upto_created_at=bound[0],
        upto_pk=bound[1],
    )


def start(job):
    """Run the job in the background, once the transaction that created it commits."""
    transaction.on_commit(lambda: enqueue(job.pk), robust=True)


def enqueue(job_pk):
    from django_q.tasks import async_task

    async_task("dashboard.tasks.run_bulk_resend", job_pk, task_name=f"bulk-resend-{job_pk}", save=False)


def cancel(job, user=None):
    """Stop the job before its next chunk; True if it was still running."""
    now = timezone.now()
    return bool(
        BulkResend.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            status=JobStatus.CANCELLED, cancelled_by=user, finished_at=now, lease_expires_at=None
        )
    )


def run(job_pk, budget=None, progress=None):
    """Work on the job, a chunk at least, then until `budget` seconds have passed (None: until
    done). Returns True when there is more to do. `progress(job)` is called after every chunk."""
    now = timezone.now()
    claimed = (
        BulkResend.objects.filter(pk=job_pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .filter(Q(lease_expires_at=None) | Q(lease_expires_at__lt=now))
        .update(
            status=JobStatus.RUNNING,
            lease_expires_at=now + LEASE,
            touched_at=now,
            started_at=Coalesce("started_at", now),
        )
    )
    if not claimed:
        return False  # finished, cancelled, or another task holds it
    job = BulkResend.objects.get(pk=job_pk)
    log_filter = LogFilter.from_dict(job.filters)
    deadline = None if budget is None else time.monotonic() + budget
    while True:
        if not BulkResend.objects.filter(pk=job_pk, status=JobStatus.RUNNING).update(touched_at=timezone.now()):
            return False  # cancelled
        chunk = resends.chunk(log_filter, job, CHUNK)
        if not chunk:
            BulkResend.objects.filter(pk=job_pk, status=JobStatus.RUNNING).update(
                status=JobStatus.DONE, finished_at=timezone.now(), lease_expires_at=None
            )
            return False
        resendable = [pk for pk, _, state, has_payload in chunk if has_payload and state != State.DELIVERING]
        reopened = queue.reopen(resendable, Trigger.BULK)
        last_pk, last_at = chunk[-1][0], chunk[-1][1]
        moved = BulkResend.objects.filter(pk=job_pk, status=JobStatus.RUNNING).update(
            processed=F("processed") + len(chunk),
            reopened=F("reopened") + reopened,
            skipped=F("skipped") + len(chunk) - reopened,
            after_created_at=last_at,
            after_pk=last_pk,
            lease_expires_at=timezone.now() + LEASE,
            touched_at=timezone.now(),
        )
        if not moved:
            return False  # cancelled meanwhile
        job.refresh_from_db()
        if progress is not None:
            progress(job)
        if deadline is not None and time.monotonic() >= deadline:
            break
    BulkResend.objects.filter(pk=job_pk, status=JobStatus.RUNNING).update(
        lease_expires_at=None, touched_at=timezone.now()
    )
    return True


def fail(job_pk, exc):
    """Stop a job that raised, with the error to show."""
    BulkResend.objects.filter(pk=job_pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.FAILED,
        error=f"{exc.__class__.__name__}: {exc}"[:500],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def resume_stalled(now=None):
    """Enqueue open jobs that no task holds and that went quiet (a lost task, a restarted
    worker). Returns their ids."""
    now = now or timezone.now()
    stalled = list(
        BulkResend.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], touched_at__lt=now - STALLED_AFTER)
        .filter(Q(lease_expires_at=None) | Q(lease_expires_at__lt=now))
        .values_list("pk", flat=True)
    )
    for pk in stalled:
        enqueue(pk)
    return stalled
