"""Forgotten users (docs/operations.md): a tombstone per privacy request, and the userIds whose
future calls are suppressed. Only a hash of the userId is kept."""

import hashlib

from django.db import models
from django.utils import timezone


def hash_user(user_id):
    """The SHA-256 of a userId: enough to recognise it again, never to read it back."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


class IntercomDeletion(models.TextChoices):
    PENDING = "pending"  # to be tried (again) at next_attempt_at
    DELETED = "deleted"  # Intercom deleted the contact
    ABSENT = "absent"  # Intercom had no contact for the user: nothing to delete
    FAILED = "failed"  # refused for good (the token, a permanent error): shown until someone acts


class Forgotten(models.Model):
    """The tombstone of one privacy request: who asked, when, and what was deleted where."""

    user_hash = models.CharField(max_length=64)
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField(default=timezone.now)
    suppress = models.BooleanField(default=False)
    # Calls whose payload, email and exchange bodies were expunged (identified and attributed ones).
    calls_expunged = models.PositiveIntegerField(default=0)
    anonymous_ids = models.PositiveIntegerField(default=0)
    intercom = models.CharField(max_length=10, choices=IntercomDeletion.choices, default=IntercomDeletion.PENDING)
    # Kept only until Intercom's deletion is done (to find the contact), then erased.
    pending_external_id = models.CharField(max_length=255, blank=True, default="")
    # The Intercom contact ids the relay had cached for the user, to delete (archived ones too).
    contact_ids = models.JSONField(default=list, blank=True)
    intercom_attempts = models.PositiveIntegerField(default=0)
    intercom_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    intercom_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [
            # The sweeper: deletions in Intercom still to try.
            models.Index(fields=["intercom", "next_attempt_at"], name="forgotten_pending"),
            models.Index(fields=["user_hash"], name="forgotten_user"),  # "was this user forgotten?"
        ]

    def __str__(self):
        return f"forgotten user {self.user_hash[:12]}… ({self.requested_at:%Y-%m-%d})"


class SuppressedUser(models.Model):
    """A forgotten userId whose later calls are stored as `suppressed`, without their payload."""

    user_hash = models.CharField(max_length=64, unique=True)
    forgotten = models.ForeignKey(Forgotten, on_delete=models.CASCADE, related_name="suppressions")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"suppressed user {self.user_hash[:12]}…"
