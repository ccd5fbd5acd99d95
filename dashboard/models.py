"""The dashboard's own rows: bulk resends, run in the background and followed from the log."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class BulkResend(models.Model):
    """Resend every delivery a log filter matched when it was confirmed (oldest first).

    The snapshot bound (`upto_*`) keeps calls that arrive later out; the cursor (`after_*`) lets the
    work go on in slices, each a short task, and survive a restart."""

    filters = models.JSONField(default=dict, blank=True)
    description = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    # Matching deliveries when the operator confirmed (the count shown before asking).
    total = models.PositiveIntegerField(default=0)
    # Looked at so far; of those, made due again, and left alone (in flight, or no payload).
    processed = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    upto_created_at = models.DateTimeField()
    upto_pk = models.BigIntegerField()
    after_created_at = models.DateTimeField(null=True, blank=True)
    after_pk = models.BigIntegerField(null=True, blank=True)
    # A slice holds the job while it runs; an expired lease means its task was lost.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Last progress or hand-over between slices; a job quiet for long is resumed.
    touched_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "bulk resend"
        indexes = [
            # The resume schedule: unfinished jobs that went quiet.
            models.Index(fields=["status", "touched_at"], name="bulk_resend_open"),
        ]

    def __str__(self):
        return f"bulk resend {self.pk}: {self.description}"

    @property
    def is_open(self):
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def percent(self):
        if not self.total:
            return 100 if not self.is_open else 0
        return min(100, round(100 * self.processed / self.total))


class LoginFailures(models.Model):
    """Failed dashboard logins of one username or one client IP in the current window, counted
    here when Redis does not count them (dashboard.throttle)."""

    # "user:<hash of the username>" or "ip:<address>" (an IPv6 client's /64).
    key = models.CharField(max_length=64, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    # The window started at its first failure and ends here; an ended one starts again.
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "login failures"
        verbose_name_plural = "login failures"

    def __str__(self):
        return f"{self.key}: {self.failures} failed logins until {self.expires_at}"
