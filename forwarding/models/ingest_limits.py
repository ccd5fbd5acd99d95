"""The ingestion rate limit's counters, when they are kept in the database (no REDIS_URL)."""

from django.db import models

from forwarding.models.calls import Source


class IngestWindow(models.Model):
    """How many requests a source made in one fixed window of RELAY_INGEST_RATE_LIMIT.

    Every web process counts in the same row, with a conditional UPDATE; the rows of past
    windows are deleted when a source's next window starts.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # One counter per source and window; also serves the per-request lookup by both.
            models.UniqueConstraint(fields=["source", "started_at"], name="ingest_window_unique"),
        ]

    def __str__(self):
        return f"{self.source_id} from {self.started_at:%Y-%m-%d %H:%M:%S}: {self.requests}"
