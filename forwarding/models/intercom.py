"""What the relay knows about the Intercom workspace: ids, data attributes, rate limit, status."""

from django.db import models
from django.utils import timezone


class ContactLink(models.Model):
    """userId -> Intercom contact id, in one workspace (ids of another workspace mean nothing)."""

    workspace = models.CharField(max_length=64, blank=True, default="")
    user_id = models.CharField(max_length=255)
    contact_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user_id"], name="contact_link_unique")]

    def __str__(self):
        return f"{self.user_id} -> {self.contact_id}"


class CompanyLink(models.Model):
    """groupId -> Intercom company id, in one workspace."""

    workspace = models.CharField(max_length=64, blank=True, default="")
    group_id = models.CharField(max_length=255)
    company_id = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "group_id"], name="company_link_unique")]

    def __str__(self):
        return f"{self.group_id} -> {self.company_id}"


class DataAttribute(models.Model):
    """A custom data attribute the relay writes (or cannot) in one workspace: a trait `name` of
    contacts or companies, written under `alias` when set (docs/fidelity.md)."""

    class Model(models.TextChoices):
        CONTACT = "contact"
        COMPANY = "company"

    class Refusal(models.TextChoices):
        NONE = ""
        INVALID_NAME = "invalid_name"
        LIMIT = "limit"
        TYPE_CONFLICT = "type_conflict"
        OTHER = "other"

    workspace = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=10, choices=Model.choices)
    name = models.CharField(max_length=255)
    # The attribute Intercom holds the values in, when not `name` (a name the other model has).
    alias = models.CharField(max_length=255, blank=True, default="")
    data_type = models.CharField(max_length=20, blank=True, default="")
    # False: refused for a permanent reason (`refusal`); its values are dropped with a warning.
    usable = models.BooleanField(default=True)
    refusal = models.CharField(max_length=20, choices=Refusal.choices, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    # An operator chose to drop its values without a warning.
    ignored = models.BooleanField(default=False)
    first_written_at = models.DateTimeField(null=True, blank=True)
    last_written_at = models.DateTimeField(null=True, blank=True)
    calls_written = models.PositiveIntegerField(default=0)
    calls_dropped = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "model", "name"], name="data_attribute_workspace_unique")
        ]

    def __str__(self):
        return f"{self.model}.{self.name}" + (f" as {self.alias}" if self.alias else "")

    @property
    def written_as(self):
        """The attribute name sent to Intercom."""
        return self.alias or self.name


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
    """The connection status the dashboard shows (one row), for the configuration `config_key`
    names (base URL and token, hashed): a status of another configuration is not shown."""

    name = models.CharField(max_length=20, primary_key=True, default="intercom")
    config_key = models.CharField(max_length=64, blank=True, default="")
    base_url = models.CharField(max_length=255, blank=True, default="")
    # The workspace the token belongs to (GET /me): every cache of Intercom's ids is keyed by it.
    workspace_id = models.CharField(max_length=64, blank=True, default="")
    workspace_name = models.CharField(max_length=255, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    auth_failed_at = models.DateTimeField(null=True, blank=True)
    auth_error = models.CharField(max_length=500, blank=True, default="")
    # Network errors, timeouts or a run of 5xx since this moment, with no success after.
    unreachable_since = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failure_error = models.CharField(max_length=500, blank=True, default="")
    failures = models.PositiveIntegerField(default=0)  # consecutive, since the last success
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
