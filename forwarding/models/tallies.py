"""Deliveries counted per hour received and state (and failures per cause), for the overview at
any size."""

from django.db import models


class DeliveryTally(models.Model):
    """A change of +1 or -1 (or, once folded, the sum) to the deliveries received in `hour` that
    are in `state` now. Database triggers on the delivery table write a row for every insert,
    change of state and delete, so every write path counts, bulk updates included; rows are only
    ever inserted there (no hot row to lock), and `forwarding.tallies.fold` sums them. Failed
    deliveries are counted per `cause` (their error_cause; "" in every other state), for the
    overview's top failure reasons."""

    hour = models.DateTimeField()
    state = models.CharField(max_length=20)
    cause = models.CharField(max_length=50, blank=True, default="")
    change = models.IntegerField()

    class Meta:
        # The overview's hours, and a fold's keys in a range of hours (read from the index alone).
        indexes = [models.Index(fields=["hour", "state", "cause"], name="tally_key")]

    def __str__(self):
        cause = f" ({self.cause})" if self.cause else ""
        return f"{self.hour:%Y-%m-%d %H}:00 {self.state}{cause} {self.change:+d}"
