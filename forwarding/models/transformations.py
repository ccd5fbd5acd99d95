"""Transformation rules as stored: the dashboard edits them, the engine applies them (docs/delivery.md,
"Transformations"). The rules themselves are pure specs (forwarding/transformations/rules.py)."""

from django.db import models
from django.utils import timezone


class RuleCallType(models.TextChoices):
    TRACK = "track"
    PAGE = "page"
    IDENTIFY = "identify"
    GROUP = "group"


class Rule(models.Model):
    """One transformation rule: which calls it matches, and its ordered operations."""

    position = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    name = models.CharField(max_length=200, blank=True, default="")
    # None: calls of every source.
    source = models.ForeignKey("forwarding.Source", on_delete=models.CASCADE, null=True, blank=True)
    call_type = models.CharField(max_length=10, choices=RuleCallType.choices)
    # "": any event name (track) or page name (page); compared ignoring case, as Intercom does.
    event = models.CharField(max_length=255, blank=True, default="")
    # None, {"path": ..., "equals": value} or {"path": ..., "exists": true}.
    condition = models.JSONField(null=True, blank=True)
    operations = models.JSONField(default=list)
    # Bumped on every change: an attempt records (id, revision) of the rules it applied.
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"rule {self.pk}: {self.name or self.summary()}"

    def summary(self):
        """What the rule matches, in a few words."""
        event = f" {self.event!r}" if self.event else ""
        return f"{self.call_type}{event}"

    def spec(self):
        """The rule as the pure functions and the export take it."""
        return {
            "id": self.pk,
            "revision": self.revision,
            "name": self.name,
            "enabled": self.enabled,
            "source": None if self.source_id is None else str(self.source_id),
            "call_type": self.call_type,
            "event": self.event or None,
            "condition": self.condition,
            "operations": self.operations,
        }


class RuleSet(models.Model):
    """One row: the version of the rules in force, bumped with every change in the same
    transaction, so a worker checks one small row per task before it uses its cached rules."""

    version = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"rule set version {self.version}"
