"""The dashboard's own rows: bulk resends, run in the background and followed from the log; login
failures; the operator API's tokens."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from forwarding.models.calls import hash_key


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


TOKEN_PREFIX = "rly_"
TOKEN_PREFIX_LENGTH = 8


# The stored form of an API token: SHA-256 hex, as of a write key (both random, 32 bytes).
hash_token = hash_key


class ApiToken(models.Model):
    """A staff user's token for the operator API (/api/v1/). Only its SHA-256 and its first
    characters are stored: the token itself is shown once, when it is created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters ("rly_" and four more), shown to tell tokens apart.
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Written at most once a minute (dashboard.api.auth).
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"API token '{self.name}' ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None

    @classmethod
    def issue(cls, user, name):
        """A new token of `user`; returns (row, token). The token is not kept: show it once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(user=user, name=name, prefix=token[:TOKEN_PREFIX_LENGTH], token_hash=hash_token(token))
        return row, token
