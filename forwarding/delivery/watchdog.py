"""The cluster's watchdog: a qcluster whose tasks stop running while deliveries are overdue is
restarted by its own main process.

django-q2 shares one task queue between its worker processes; a worker killed while it waits on
that queue dies holding the queue's lock, and every worker after it waits forever. The guard
reincarnates the dead worker, but no task runs again: only a new cluster helps. So each task
that ends (and each pass of the sweeper) writes a heartbeat, and a thread of the main `qcluster`
process restarts the whole cluster (its processes killed, the command started again in the same
process) when the heartbeat is older than RELAY_STALL_SECONDS while deliveries are overdue."""

import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from forwarding.models import ClusterBeat, Delivery, State

logger = logging.getLogger(__name__)

BEAT_INTERVAL = 5.0  # seconds between a process's heartbeats at most
_beaten_at = float("-inf")


def host():
    """The cluster's key: one qcluster per host."""
    return socket.gethostname()[:255]


def beat():
    """A task of this host's cluster has ended: the cluster works (written every few seconds)."""
    global _beaten_at
    if time.monotonic() - _beaten_at < BEAT_INTERVAL:
        return
    _beaten_at = time.monotonic()
    try:
        now = timezone.now()
        if not ClusterBeat.objects.filter(host=host()).update(beat_at=now, stalled_since=None):
            ClusterBeat.objects.get_or_create(host=host(), defaults={"beat_at": now})
    except DatabaseError:
        logger.warning("could not write the cluster's heartbeat", exc_info=True)


def stall_after():
    return timedelta(seconds=settings.RELAY_STALL_SECONDS)


def overdue(now):
    """Whether a delivery has been due for longer than a cluster may take to start it."""
    return Delivery.objects.filter(state=State.PENDING, next_attempt_at__lt=now - stall_after()).exists()


def stalled(now, beat_at):
    """Whether a cluster whose last task ended at `beat_at` is stalled."""
    return beat_at < now - stall_after() and overdue(now)


def stalled_clusters(now=None):
    """The clusters found stalled, or not beating while deliveries are overdue (for /health/worker
    and the dashboard): [(host, since)]; one row with host "" when no cluster ever beat."""
    now = now or timezone.now()
    if not overdue(now):
        return []
    beats = list(ClusterBeat.objects.values_list("host", "beat_at", "stalled_since"))
    if not beats:
        return [("", None)]
    if any(beat_at >= now - stall_after() for _, beat_at, _ in beats):
        return []  # some cluster works: the overdue ones are its backlog
    return [(name, since or beat_at) for name, beat_at, since in beats]


class Watchdog(threading.Thread):
    """Checks this host's cluster every few seconds; restarts it when stalled (see module)."""

    def __init__(self, restart):
        super().__init__(name="relay-watchdog", daemon=True)
        self.restart = restart
        self.interval = min(10.0, max(1.0, settings.RELAY_STALL_SECONDS / 6))
        self.stopped = threading.Event()

    def run(self):
        # A new cluster is given the whole stall time before it is judged.
        self._write(beat_at=timezone.now(), stalled_since=None)
        while not self.stopped.wait(self.interval):
            try:
                close_old_connections()
                if self.check():
                    return
            except DatabaseError:
                logger.warning("watchdog: the database did not answer", exc_info=True)

    def check(self):
        """Restart the cluster when stalled; True when it did."""
        now = timezone.now()
        beat_at = ClusterBeat.objects.filter(host=host()).values_list("beat_at", flat=True).first()
        if beat_at is None or not stalled(now, beat_at):
            return False
        logger.critical(
            "the task queue has run no task since %s while deliveries are overdue: restarting the cluster",
            f"{beat_at:%H:%M:%S}",
        )
        row = ClusterBeat.objects.get(host=host())
        self._write(stalled_since=row.stalled_since or beat_at, restarts=row.restarts + 1, restarted_at=now)
        self.restart()
        return True

    def _write(self, **fields):
        if not ClusterBeat.objects.filter(host=host()).update(**fields):
            ClusterBeat.objects.get_or_create(host=host(), defaults=fields)


def restart_in_place():
    """Kill every process this one started (the cluster's sentinel, workers, pusher, monitor),
    then run this same command again in this process: same pid, so a supervisor sees no exit."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.execv(sys.executable, [sys.executable, *sys.argv])


def descendants(pid):
    """Every live process below `pid`, read from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found
