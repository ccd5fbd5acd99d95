"""The registry of event names as Intercom sees them (case-insensitive), against its cap."""

from django.db import models
from django.utils import timezone


class NameStatus(models.TextChoices):
    ACTIVE = "active"
    ARCHIVED = "archived"


class EventName(models.Model):
    """One event name (a track name, or the page event name), its counts and its slot."""

    # Lower-cased: Intercom compares event names case-insensitively.
    key = models.CharField(max_length=255, unique=True)
    # As first seen.
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=NameStatus.choices, default=NameStatus.ACTIVE)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # When the name took one of the cap's slots (the relay sent an event under it); None: no slot.
    slot_used_at = models.DateTimeField(null=True, blank=True)
    total_count = models.PositiveBigIntegerField(default=0)
    delivered_count = models.PositiveBigIntegerField(default=0)
    # Deliveries held under this name right now.
    held_count = models.PositiveBigIntegerField(default=0)
    suppressed_count = models.PositiveBigIntegerField(default=0)
    # Intercom answered its cap's 422 for this name while the relay counted a free slot.
    intercom_refused_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [
            # Usage: names holding a slot.
            models.Index(fields=["slot_used_at"], name="event_name_slot"),
            # Release: held names, oldest first seen first.
            models.Index(fields=["held_count", "first_seen_at"], name="event_name_held"),
        ]

    def __str__(self):
        return self.name


class EventNameHour(models.Model):
    """Calls per name per hour: the 24 h and 7 day counts are sums of these buckets."""

    event_name = models.ForeignKey(EventName, on_delete=models.CASCADE, related_name="hours")
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event_name", "hour"], name="event_name_hour_unique")]
        indexes = [
            # 24 h / 7 day counts of every name: buckets since a time.
            models.Index(fields=["hour"], name="event_name_hour_since"),
        ]

    def __str__(self):
        return f"{self.event_name_id} {self.hour:%Y-%m-%d %H}h: {self.count}"
