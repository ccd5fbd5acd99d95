"""What the relay knows about the Intercom workspace: ids, data attributes, rate limit, status."""

from django.db import models
from django.utils import timezone


class ContactLink(models.Model):
    """userId -> Intercom contact id."""

    user_id = models.CharField(max_length=255, unique=True)
    contact_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.user_id} -> {self.contact_id}"


class CompanyLink(models.Model):
    """groupId -> Intercom company id."""

    group_id = models.CharField(max_length=255, unique=True)
    company_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.group_id} -> {self.company_id}"


class DataAttribute(models.Model):
    """A custom data attribute known to exist (or refused) in the workspace."""

    class Model(models.TextChoices):
        CONTACT = "contact"
        COMPANY = "company"

    model = models.CharField(max_length=10, choices=Model.choices)
    name = models.CharField(max_length=255)
    data_type = models.CharField(max_length=20, blank=True, default="")
    # False: Intercom refused to create it; its values are dropped with a warning.
    usable = models.BooleanField(default=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="data_attribute_unique")]

    def __str__(self):
        return f"{self.model}.{self.name}"


class RateLimitWindow(models.Model):
    """The shared limiter: what Intercom's X-RateLimit-* headers last said (one row)."""

    name = models.CharField(max_length=20, primary_key=True, default="intercom")
    limit = models.PositiveIntegerField(null=True, blank=True)
    remaining = models.IntegerField(null=True, blank=True)
    reset_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.name}: {self.remaining} of {self.limit} until {self.reset_at}"


class IntercomStatus(models.Model):
    """The connection status the dashboard shows (one row)."""

    name = models.CharField(max_length=20, primary_key=True, default="intercom")
    last_success_at = models.DateTimeField(null=True, blank=True)
    auth_failed_at = models.DateTimeField(null=True, blank=True)
    auth_error = models.CharField(max_length=500, blank=True, default="")
    # Intercom refused a new event name (its cap) while the relay counted `cap_refused_usage` slots:
    # Intercom counts names the relay did not send.
    cap_refused_at = models.DateTimeField(null=True, blank=True)
    cap_refused_usage = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} (last success {self.last_success_at})"

    @classmethod
    def get(cls):
        return cls.objects.get_or_create(name="intercom")[0]


class WorkerStart(models.Model):
    """When a worker process last started (one row): tasks enqueued before it may have been lost
    with the worker it replaced (the Redis broker keeps no receipts), so the sweeper sends them again."""

    name = models.CharField(max_length=20, primary_key=True, default="workers")
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"workers started {self.started_at}"
