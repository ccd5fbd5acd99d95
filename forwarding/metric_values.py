"""The figures /metrics exposes and the alert rules check, read from the database. Every query is
served by an index and bounded whatever the number of stored calls: tallies instead of counts,
LIMITs, and recent windows found by primary key (ids grow with time)."""

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, Q, Sum, Value, When

from forwarding import event_names
from forwarding.delivery import attributes, connection
from forwarding.ingestion.rejections import SUMMARY_CODE
from forwarding.models import (
    Attempt,
    DataAttribute,
    Delivery,
    DeliveryTally,
    EventName,
    Exchange,
    Outcome,
    RateLimitWindow,
    RejectedMessage,
    State,
)

TALLY_DAYS = 7  # deliveries by state: those received in the last 7 days (the overview's span)
REJECTED_WINDOW = timedelta(hours=1)
BACKLOG_COUNTED_UP_TO = 10_000  # due deliveries are counted under a LIMIT
ATTEMPT_WINDOW = timedelta(minutes=15)
ATTEMPTS_SCANNED = 20_000  # at most the newest this many attempts make the window
FAILED_OUTCOMES = (Outcome.RETRY, Outcome.AUTH, Outcome.FAILED, Outcome.ERROR)
# Seconds: Intercom requests' latency buckets (the read timeout is 20 s by default).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


# -- deliveries, calls accepted ------------------------------------------------------------------


@dataclass
class Tallies:
    by_state: dict  # {state: deliveries received in the last TALLY_DAYS days, in that state now}
    this_hour: int  # deliveries (= calls accepted) received in the current clock hour
    last_hour: int  # ... in the previous one


def tallies(now):
    """From DeliveryTally (index tally_key): one row per hour, state and cause once folded."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = (
        DeliveryTally.objects.filter(hour__gte=hour - timedelta(days=TALLY_DAYS) + timedelta(hours=1))
        .values("hour", "state")
        .annotate(n=Sum("change"))
        .values_list("hour", "state", "n")
    )
    result = Tallies({state: 0 for state in State.values}, 0, 0)
    for at, state, n in rows:
        result.by_state[state] = result.by_state.get(state, 0) + n
        if at == hour:
            result.this_hour += n
        elif at == hour - timedelta(hours=1):
            result.last_hour += n
    return result


def rejected_by_code(now):
    """{code: messages rejected in the last hour} (index rejected_received; at most
    RELAY_MAX_REJECTED_PER_MINUTE rows per write key and minute, plus one summary row that
    counts the rest)."""
    recent = RejectedMessage.objects.filter(received_at__gte=now - REJECTED_WINDOW)
    counts = dict(recent.exclude(code=SUMMARY_CODE).values("code").annotate(n=Count("*")).values_list("code", "n"))
    for excerpt in recent.filter(code=SUMMARY_CODE).values_list("excerpt", flat=True):
        try:
            by_code = json.loads(excerpt)["by_code"]
        except (ValueError, KeyError, TypeError):
            continue
        for code, n in by_code.items():
            if isinstance(n, int):
                counts[code] = counts.get(code, 0) + n
    return counts


@dataclass
class Backlog:
    due: int  # pending deliveries due now, counted up to BACKLOG_COUNTED_UP_TO
    oldest_due_seconds: float  # how long the longest-due one has been due (0: none)


def backlog(now):
    """From the index delivery_due (state, next_attempt_at): a LIMIT-bounded count, and the first row."""
    due = Delivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    count = due.values("pk")[:BACKLOG_COUNTED_UP_TO].count()
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    return Backlog(count, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


# -- attempts and Intercom's answers -------------------------------------------------------------


@dataclass
class Attempts:
    """The finished attempts of the window, by (outcome, cause)."""

    window_seconds: float  # shorter than ATTEMPT_WINDOW when more than ATTEMPTS_SCANNED were made in it
    first_pk: int | None  # the window's first attempt (None: no attempt in it)
    counts: dict = field(default_factory=dict)

    @property
    def total(self):
        return sum(self.counts.values())

    @property
    def failed(self):
        return sum(n for (outcome, _), n in self.counts.items() if outcome in FAILED_OUTCOMES)

    @property
    def failure_rate(self):
        return self.failed / self.total if self.total else 0.0


def attempts(now, window=ATTEMPT_WINDOW, scanned=ATTEMPTS_SCANNED):
    """Attempts started in the last `window`, found on the primary key: the newest `scanned` ids
    at most (attempts have no index on their start; their ids grow with it). Three queries."""
    since = now - window
    edge = Attempt.objects.order_by("-pk").values_list("pk", "started_at")[scanned - 1 : scanned].first()
    lowest, covered = (edge[0], max(since, edge[1])) if edge else (0, since)
    first = (
        Attempt.objects.filter(pk__gte=lowest, started_at__gte=since)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    result = Attempts((now - covered).total_seconds(), first)
    if first is None:
        return result
    timeout = Case(When(error__startswith="timeout", then=Value(True)), default=Value(False))
    rows = (
        Attempt.objects.filter(pk__gte=first, started_at__gte=since)
        .exclude(outcome="")
        .values("outcome", "status", timed_out=timeout)
        .annotate(n=Count("*"))
        .values_list("outcome", "status", "timed_out", "n")
    )
    for outcome, status, timed_out, n in rows:
        key = (outcome, cause_of(outcome, status, timed_out))
        result.counts[key] = result.counts.get(key, 0) + n
    return result


def cause_of(outcome, status, timed_out):
    """A short, bounded cause for an attempt (forwarding.delivery.policy's words)."""
    if outcome == Outcome.ERROR:
        return "relay_error"
    if outcome == Outcome.WAITING:
        return "user_unknown"
    if outcome == Outcome.HELD:
        return "event_name_cap"
    if status == 429:
        return "rate_limited"
    if status is not None and not 200 <= status < 300:
        return f"http_{status}"
    if status is None and outcome == Outcome.RETRY:
        return "timeout" if timed_out else "network"
    return "none"


@dataclass
class Requests:
    """The HTTP requests to Intercom of the attempts' window."""

    by_status: dict  # {status or None (no answer): requests}
    buckets: list  # [(upper bound in seconds, requests at most that long)], cumulative
    count: int
    seconds: float  # their durations summed


def intercom_requests(first_attempt_pk):
    """One grouped query over the exchanges of the window's attempts (the index on attempt_id)."""
    result = Requests({}, [(bound, 0) for bound in LATENCY_BUCKETS], 0, 0.0)
    if first_attempt_pk is None:
        return result
    aggregates = {f"le{i}": Count("pk", filter=Q(duration_ms__lte=b * 1000)) for i, b in enumerate(LATENCY_BUCKETS)}
    rows = (
        Exchange.objects.filter(attempt_id__gte=first_attempt_pk)
        .values("status")
        .annotate(n=Count("pk"), ms=Sum("duration_ms"), **aggregates)
        .order_by()
    )
    for row in rows:
        result.by_status[row["status"]] = result.by_status.get(row["status"], 0) + row["n"]
        result.count += row["n"]
        result.seconds += (row["ms"] or 0) / 1000
        result.buckets = [(b, n + row[f"le{i}"]) for i, (b, n) in enumerate(result.buckets)]
    return result


# -- Intercom's status, limits and slots ---------------------------------------------------------


def intercom_status():
    """The configured connection's status row, or None."""
    return connection.current()


def rate_limit():
    return RateLimitWindow.objects.filter(name="intercom").first()


def event_name_usage():
    return event_names.usage()


def names_held():
    """Event names holding deliveries now (index event_name_held)."""
    return EventName.objects.filter(held_count__gt=0).count()


def attribute_slots(status):
    """{model: custom data attributes Intercom holds} in the shown workspace (the unique index on
    workspace, model, name), as the data-attributes page counts them."""
    workspace = status.workspace_id if status else ""
    used = dict(
        attributes.in_intercom(workspace).values("model").annotate(n=Count("*")).order_by().values_list("model", "n")
    )
    return {model: used.get(model, 0) for model in DataAttribute.Model.values}


def attribute_limit():
    return settings.INTERCOM_ATTRIBUTE_LIMIT
