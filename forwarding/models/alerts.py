"""Alerts that reach a person (forwarding/alerts.py): where they go, the rules' settings, each
rule's firing state, and the log of what was sent."""

from urllib.parse import urlsplit

from django.db import models
from django.utils import timezone

SHOWN_SECRET_CHARS = 4


class AlertTarget(models.Model):
    """Where alerts are posted. The secret signs the JSON kind's bodies: it is stored (it is needed
    to sign), shown in full once when the target is added, then only its first characters."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack-compatible"
        JSON = "json", "Signed JSON"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SLACK)
    # A Slack webhook's URL is itself a credential: shown cut (`shown_url`), never logged.
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"alert target {self.name} ({self.kind})"

    @property
    def shown_secret(self):
        return f"{self.secret[:SHOWN_SECRET_CHARS]}…" if self.secret else ""

    @property
    def shown_url(self):
        """Scheme and host, and the path's last characters: enough to tell targets apart."""
        parts = urlsplit(self.url)
        tail = parts.path.rstrip("/")[-4:]
        return f"{parts.scheme}://{parts.netloc}/…{tail}" if tail else f"{parts.scheme}://{parts.netloc}/"


class AlertRule(models.Model):
    """One alert's settings: the condition is code (forwarding.alerts.CHECKS, by `kind`), its
    threshold and whether it is checked are the operators' (one row per kind, made by the migration)."""

    class Kind(models.TextChoices):
        AUTH_FAILED = "auth_failed", "Intercom refuses the token"
        UNREACHABLE = "unreachable", "Intercom unreachable"
        FAILURE_RATE = "failure_rate", "Failure rate of attempts (15 minutes)"
        BACKLOG_AGE = "backlog_age", "Oldest due delivery"
        EVENT_NAME_SLOTS = "event_name_slots", "Event-name slots used"
        ATTRIBUTE_SLOTS = "attribute_slots", "Data-attribute slots used"
        NAMES_HELD = "names_held", "Event names holding deliveries"

    kind = models.CharField(max_length=20, choices=Kind.choices, unique=True)
    threshold = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"alert rule {self.get_kind_display()}"


class AlertState(models.Model):
    """Whether a rule fires now: since when, when it was last sent, when it last cleared."""

    rule = models.OneToOneField(AlertRule, on_delete=models.CASCADE, primary_key=True, related_name="state")
    firing_since = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # What the check found last time it fired (the figure against the threshold).
    detail = models.CharField(max_length=500, blank=True, default="")

    def __str__(self):
        return f"{self.rule_id}: firing since {self.firing_since}" if self.firing_since else f"{self.rule_id}: ok"


class SentAlert(models.Model):
    """One message posted to one target, with the target's answer (or why there was none)."""

    class Event(models.TextChoices):
        FIRE = "fire"
        REPEAT = "repeat"
        RESOLVE = "resolve"
        TEST = "test"

    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    target = models.ForeignKey(AlertTarget, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    target_name = models.CharField(max_length=100)  # kept when the target is deleted
    event = models.CharField(max_length=10, choices=Event.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    sent_at = models.DateTimeField(default=timezone.now)
    body = models.CharField(max_length=1000, blank=True, default="")  # the start of the body sent

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [
            # The alerts page: the latest sent.
            models.Index(fields=["-sent_at", "-id"], name="sent_alert_recent"),
        ]

    def __str__(self):
        return f"{self.event} to {self.target_name} at {self.sent_at}: {self.status_code or self.error}"

    @property
    def ok(self):
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error
