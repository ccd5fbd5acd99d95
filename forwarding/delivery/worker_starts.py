"""Which worker starts may have lost a task. A worker that died (killed, out of memory, timed out),
or a whole cluster starting, may have taken tasks with it: its start is recorded (`WorkerStart`)
and the sweeper looks for them at once. A worker that django-q2 recycles (after `recycle` tasks,
or past `max_rss`) has finished its tasks and lost none: it leaves a marker as it goes, and the
replacement its sentinel starts takes the marker instead of recording a start. Recorded, every
recycling made the next sweep enqueue again the calls of the tasks the cluster held (about one
per worker every few seconds under a backlog).

The marker is a file beside the sentinel, not a row: django-q2 sends `post_execute_in_worker`
while holding the lock its sentinel's guard takes for every worker, so a write waiting on the
database there would hold up the guard."""

import logging
import os
import tempfile
import time
from pathlib import Path

from django.db import DatabaseError
from django.utils import timezone
from django_q.conf import Conf
from django_q.worker import rss_check

from forwarding.models import WorkerStart

logger = logging.getLogger(__name__)

MARKERS = Path(tempfile.gettempdir()) / "relay-recycled-workers"
# A replacement starts within the guard's next cycle (half a second); a marker older than this
# was left by a sentinel that died before replacing its worker, and is not taken.
MARKER_FRESH_SECONDS = 30

_tasks_done = 0  # by this worker process


def task_done(**kwargs):
    """django-q2's post_execute_in_worker: after the task on which django-q2 recycles this
    worker (its own test, in the same order), leave the marker."""
    global _tasks_done
    _tasks_done += 1
    if _tasks_done == Conf.RECYCLE or rss_check():
        try:
            MARKERS.mkdir(exist_ok=True)
            (MARKERS / f"{os.getppid()}-{os.getpid()}").touch()
        except OSError:
            logger.warning("could not mark a worker's recycling", exc_info=True)


def replaces_recycled():
    """Take one fresh marker left by a recycled worker of this process's sentinel, if any; stale
    markers (any sentinel's) are removed on the way."""
    prefix = f"{os.getppid()}-"
    try:
        names = os.listdir(MARKERS)
    except OSError:
        return False
    for name in names:
        marker = MARKERS / name
        try:
            fresh = time.time() - marker.stat().st_mtime < MARKER_FRESH_SECONDS
            if fresh and not name.startswith(prefix):
                continue  # another cluster's on this machine
            marker.unlink()  # only one replacement takes it
        except OSError:
            continue  # a sibling took it
        if fresh:
            return True
    return False


def worker_started(**kwargs):
    """django-q2's post_spawn: record the start, unless it replaces a recycled worker."""
    if replaces_recycled():
        return
    try:
        WorkerStart.objects.update_or_create(name="workers", defaults={"started_at": timezone.now()})
    except DatabaseError:
        logger.warning("could not record a worker start", exc_info=True)
