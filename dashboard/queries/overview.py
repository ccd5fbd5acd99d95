"""The overview's figures: deliveries by state per hour and day, the backlog, the top failure
causes, Intercom's rate-limit window, the calls delivered with data dropped, and stalled workers."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import CharField, Count, Func, OuterRef, Q, Subquery, Sum

from forwarding.delivery import watchdog
from forwarding.models import Delivery, DeliveryTally, RateLimitWindow, State

TOP_CAUSES = 8
# How the overview groups states (the log filters on single states).
STATE_GROUPS = [
    ("delivered", "Delivered", (State.DELIVERED,)),
    ("in_progress", "In progress", (State.PENDING, State.DELIVERING)),
    ("waiting", "Waiting", (State.WAITING,)),
    ("held", "Held", (State.HELD,)),
    ("suppressed", "Suppressed", (State.SUPPRESSED,)),
    ("skipped", "Skipped", (State.SKIPPED,)),
    ("failed", "Failed", (State.FAILED,)),
]
GROUP_OF_STATE = {state: key for key, _, states in STATE_GROUPS for state in states}


@dataclass
class Bucket:
    start: datetime
    end: datetime
    counts: dict

    @property
    def total(self):
        return sum(self.counts.values())


@dataclass
class Activity:
    """Deliveries of the calls received in a window, by state group, per hour or day."""

    unit: str
    since: datetime
    buckets: list
    totals: dict

    @property
    def received(self):
        return sum(self.totals.values())


def activity(now, unit):
    """The last 24 hours by hour, or the last 7 days by day (the newest bucket is partial)."""
    if unit == "hour":
        step, count = timedelta(hours=1), 24
        first = now.replace(minute=0, second=0, microsecond=0) - (count - 1) * step
        text = "%Y-%m-%d %H"
    else:
        step, count = timedelta(days=1), 7
        first = now.replace(hour=0, minute=0, second=0, microsecond=0) - (count - 1) * step
        text = "%Y-%m-%d"
    # The tallies (one row per hour, state and cause once folded): the same cost at any number of
    # calls. Summed per bucket in the database, named as text: per hour with datetimes, a busy
    # week was some 1,300 rows for Python to convert and place (1.5 x the page's time at 10,000
    # calls, which left most hours empty).
    rows = (
        DeliveryTally.objects.filter(hour__gte=first)
        .annotate(bucket=BucketName("hour", unit))
        .values("bucket", "state")
        .annotate(n=Sum("change"))
        .values_list("bucket", "state", "n")
    )
    empty = {key: 0 for key, _, _ in STATE_GROUPS}
    buckets = [Bucket(first + i * step, first + (i + 1) * step, dict(empty)) for i in range(count)]
    index = {bucket.start.strftime(text): bucket for bucket in buckets}
    totals = dict(empty)
    for name, state, n in rows:
        bucket = index.get(name)
        group = GROUP_OF_STATE.get(state)
        if bucket is None or group is None:
            continue
        bucket.counts[group] += n
        totals[group] += n
    return Activity(unit, first, buckets, totals)


class BucketName(Func):
    """A tally's hour as the text naming its bucket: "YYYY-MM-DD HH" per hour, "YYYY-MM-DD" per
    day (UTC), as `activity` names its buckets."""

    output_field = CharField()

    def __init__(self, expression, unit):
        self.unit = unit
        super().__init__(expression)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])  # stored as "YYYY-MM-DD HH:MM:SS"
        return f"substr({sql}, 1, {13 if self.unit == 'hour' else 10})", params

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        pattern = "YYYY-MM-DD HH24" if self.unit == "hour" else "YYYY-MM-DD"
        return f"to_char({sql} AT TIME ZONE 'UTC', '{pattern}')", params


@dataclass
class Backlog:
    size: int  # pending or in flight
    due: int  # pending and due now
    oldest_due: dict | None  # pk, next_attempt_at, created_at of the longest-due delivery

    def oldest_due_age(self, now):
        return now - self.oldest_due["next_attempt_at"] if self.oldest_due else None


def backlog(now):
    counts = Delivery.objects.filter(state__in=[State.PENDING, State.DELIVERING]).aggregate(
        size=Count("*"), due=Count("pk", filter=Q(state=State.PENDING, next_attempt_at__lte=now))
    )
    oldest = (
        Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values("pk", "next_attempt_at", "created_at")
        .first()
    )
    return Backlog(counts["size"], counts["due"], oldest)


def top_failure_causes(since, limit=TOP_CAUSES):
    """Failed deliveries received since `since` (an hour's start: the tallies count by hour),
    grouped by cause, most frequent first, with the newest one's error message as an example.
    The counts are the tallies' (a few hundred rows at any size: grouping the failed deliveries of
    a week took 15 x as long at a million calls); each example one step down the delivery_cause
    index."""
    example = (
        Delivery.objects.filter(state=State.FAILED, error_cause=OuterRef("cause"), created_at__gte=since)
        .order_by("-created_at")
        .values("last_error")[:1]
    )
    rows = (
        DeliveryTally.objects.filter(state=State.FAILED, hour__gte=since)
        .values("cause")
        .annotate(n=Sum("change"))
        .filter(n__gt=0)
        .order_by("-n", "cause")
        .annotate(example=Subquery(example))[:limit]
    )
    return [{"error_cause": row["cause"], "n": row["n"], "example": row["example"] or ""} for row in rows]


def rate_limit_window():
    """What Intercom's rate-limit headers last said (RateLimitWindow), or None; never created here.
    (The connection's status is forwarding.delivery.connection.current(), read once per request by the
    views: dashboard.views.common.intercom_status.)"""
    return RateLimitWindow.objects.filter(name="intercom").first()


@dataclass
class Dropped:
    """Delivered calls whose last attempt dropped, cut or renamed something, received since
    `day_since` (24 hours) and `week_since` (7 days)."""

    day: int
    week: int
    day_since: datetime
    week_since: datetime


def delivered_with_data_dropped(now):
    """Delivered with warnings, received in the last 24 hours and 7 days, in one query. Its WHERE
    is the partial index delivery_warned's (warned, created_at): the state is counted, not
    filtered, so no other index (delivered is most of the log) competes with it."""
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    counts = warned_since(week).aggregate(
        day=Count("pk", filter=Q(state=State.DELIVERED, created_at__gte=day)),
        week=Count("pk", filter=Q(state=State.DELIVERED)),
    )
    return Dropped(counts["day"] or 0, counts["week"] or 0, day, week)


def warned_since(since):
    """Deliveries with warnings received since `since` (the partial index delivery_warned)."""
    return Delivery.objects.filter(warned=True, created_at__gte=since)


# -- workers -------------------------------------------------------------------------------------


@dataclass
class Stall:
    """The worker clusters are stalled: deliveries are overdue and none has finished a task lately."""

    since: datetime | None  # the last time a worker finished a task; None: none has ever reported
    hosts: list


def stalled_workers(now=None):
    """A Stall, or None while the workers keep up (watchdog.stalled_clusters: then a single EXISTS
    on the delivery_due index; a second query reads the clusters' heartbeats only when overdue)."""
    clusters = watchdog.stalled_clusters(now)
    if not clusters:
        return None
    known = [since for _, since in clusters if since]
    return Stall(max(known) if known else None, sorted(host for host, _ in clusters if host))
