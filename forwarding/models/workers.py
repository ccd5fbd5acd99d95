"""What the workers tell of themselves: a cluster's heartbeat, and the sweeper's single run."""

from django.db import models
from django.utils import timezone


class ClusterBeat(models.Model):
    """One qcluster (one per host): when one of its tasks last finished, and whether its
    watchdog found it stalled (due deliveries, no task done) and restarted it."""

    host = models.CharField(max_length=255, primary_key=True)
    beat_at = models.DateTimeField(default=timezone.now)
    stalled_since = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    restarted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"cluster on {self.host}: last task {self.beat_at}"


class SweepRun(models.Model):
    """The sweeper's run (one row): at most one at a time, and none queued behind it."""

    name = models.CharField(max_length=20, primary_key=True, default="sweep")
    started_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"sweep started {self.started_at}"
