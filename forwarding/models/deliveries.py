"""One delivery per accepted call, one attempt per try, one exchange per HTTP request."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from forwarding.models.calls import Call

BODY_LIMIT = 20 * 1024


class State(models.TextChoices):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    WAITING = "waiting"
    HELD = "held"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"
    FAILED = "failed"


class Trigger(models.TextChoices):
    AUTO = "auto"
    MANUAL = "manual"
    BULK = "bulk"
    RELEASE = "release"


class Outcome(models.TextChoices):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: network, timeout, 408, 5xx
    RATE_LIMITED = "rate_limited"  # 429: does not use up the schedule
    AUTH = "auth"  # 401/403: the token is refused
    WAITING = "waiting"  # the user is unknown to Intercom
    HELD = "held"  # the event-name cap
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"
    FAILED = "failed"  # permanent: 400, 422 other than the cap, retries used up
    ERROR = "error"  # a bug in the relay, recorded rather than raised


class Delivery(models.Model):
    """The state of forwarding one call to Intercom."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, primary_key=True, related_name="delivery")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    # Denormalised from the call so the engine finds a user's deliveries with one index.
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    # The registry key of the call's event name (track and page), for holds and releases by name.
    event_key = models.CharField(max_length=255, blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # What asked for the next attempt (a manual resend is recorded as such).
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.AUTO)
    # When a task for it was last put on the queue; the sweeper re-enqueues what stayed due.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # Steps of the retry schedule used up (429 and auth waits do not count).
    retry_count = models.PositiveIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # A short, stable cause for grouping failures ("timeout", "http_400", ...).
    error_cause = models.CharField(max_length=50, blank=True, default="")
    warnings = models.JSONField(default=list, blank=True)
    # The last attempt dropped, cut or renamed something (`warnings` says what).
    warned = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        permissions = [("operate", "Can resend, archive, rename and release")]
        indexes = [
            # Sweeper: due pending deliveries, and expired leases.
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            # Release of a user's waiting deliveries in the order received.
            models.Index(fields=["user_id", "state", "created_at"], name="delivery_user"),
            # Attribution of anonymous waiting deliveries.
            models.Index(fields=["anonymous_id", "state"], name="delivery_anonymous"),
            # Log filtered by state, newest first.
            models.Index(fields=["state", "-created_at"], name="delivery_state_log"),
            # Held, suppressed and failed deliveries of one event name, in order received.
            models.Index(fields=["event_key", "state", "created_at"], name="delivery_event"),
            # Log filtered by cause of error.
            models.Index(fields=["error_cause", "-created_at"], name="delivery_cause"),
            # Log filtered by a class of HTTP status, newest first (partial: few rows qualify).
            models.Index(
                fields=["-created_at", "-call"],
                name="delivery_4xx",
                condition=Q(last_status__gte=400, last_status__lt=500),
            ),
            models.Index(
                fields=["-created_at", "-call"],
                name="delivery_5xx",
                condition=Q(last_status__gte=500, last_status__lt=600),
            ),
            # Log filtered by "has warnings", and the overview's "delivered with data dropped".
            models.Index(fields=["-created_at", "-call"], name="delivery_warned", condition=Q(warned=True)),
        ]

    def __str__(self):
        return f"delivery {self.pk} ({self.state})"


class Attempt(models.Model):
    """One try of a delivery."""

    # No index of its own: attempt_delivery leads with it.
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.AUTO)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=15, choices=Outcome.choices, blank=True, default="")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    warnings = models.JSONField(default=list, blank=True)
    # [[rule id, revision], ...]: the transformation rules this attempt applied, in order; None for
    # none. Nullable without a default: adding it never rebuilds the attempts' table on SQLite.
    rules = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            # Call detail: a delivery's attempts in order.
            models.Index(fields=["delivery", "started_at"], name="attempt_delivery"),
        ]

    def __str__(self):
        return f"attempt {self.pk} of delivery {self.delivery_id} ({self.outcome or 'running'})"


class Exchange(models.Model):
    """One HTTP request to Intercom made during an attempt (bodies cut, never the token)."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="exchanges")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True, default="")
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.method} {self.path} -> {self.status}"
