"""What a bulk resend matches: the confirmation's counts, the job's total and its chunks."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Case, Exists, ExpressionWrapper, IntegerField, OuterRef, Q, Value, When

from dashboard.queries.cursors import after
from dashboard.queries.log import filtered, sql_of
from forwarding.models import Call, State


def matching(log_filter, now):
    """The deliveries a log filter matches (for a bulk resend), unordered."""
    queryset, _ = filtered(log_filter, now, "delivery")
    return queryset


# The confirmation counts at most this many deliveries: counting every match would cost a page
# as much as the matches (a million after an outage), and past this many the exact number no
# longer changes the operator's decision. The job counts them all when it starts.
PREVIEW_CAP = 1000


@dataclass
class Preview:
    by_state: dict
    without_payload: int
    capped: bool = False  # more than the cap matched: the counts are of the first cap + 1

    @property
    def total(self):
        return sum(self.by_state.values())

    @property
    def in_flight(self):
        return self.by_state.get(State.DELIVERING, 0)

    @property
    def resendable(self):
        return max(0, self.total - self.in_flight - self.without_payload)


def preview(log_filter, now, upto=None, exact=False):
    """How many deliveries a bulk resend would look at, by state, and how many cannot be resent
    because their payload is gone, in one query over at most PREVIEW_CAP + 1 of them (`exact`:
    all). `upto` = (created_at, pk) bounds the snapshot."""
    cap = None if exact else PREVIEW_CAP
    queryset = _snapshot(matching(log_filter, now), upto).order_by()
    # Probed in the partial index call_payload_gone: a join read every matching call's row (on
    # PostgreSQL the count took 1.5 x as long at a million calls, 1,001 matches, as at 10,000).
    payload_gone = Exists(Call.objects.filter(pk=OuterRef("call_id"), payload__isnull=True))
    gone = Case(When(payload_gone, then=Value(1)), default=Value(0), output_field=IntegerField())
    matched = queryset.annotate(gone=gone).values_list("state", "gone")
    if cap is not None:
        matched = matched[: cap + 1]
    compiled = sql_of(matched)
    if compiled is None:
        return Preview({}, 0, False)
    sql, params = compiled
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state, COUNT(*), SUM(gone) FROM ({sql}) matched GROUP BY state", params)
        rows = cursor.fetchall()
    by_state = {state: n for state, n, _ in rows}
    capped = cap is not None and sum(by_state.values()) > cap
    return Preview(by_state, sum(gone for *_, gone in rows), capped)


def total(log_filter, now, upto):
    """Every delivery a bulk resend will look at: the job's total (one count on the filter's index)."""
    return _snapshot(matching(log_filter, now), upto).order_by().count()


def _snapshot(queryset, upto):
    if upto is None:
        return queryset
    return queryset.filter(created_at__lte=upto[0], pk__lte=upto[1])


def chunk(log_filter, job, size):
    """The next `size` deliveries of a bulk resend, oldest first: (pk, created_at, state, has_payload)."""
    queryset = _snapshot(matching(log_filter, job.upto_created_at), (job.upto_created_at, job.upto_pk))
    if job.after_pk is not None:
        queryset = after(queryset, "created_at", (job.after_created_at, job.after_pk), newer=True)
    has_payload = ExpressionWrapper(Q(call__payload__isnull=False), output_field=BooleanField())
    return list(
        queryset.annotate(has_payload=has_payload)
        .order_by("created_at", "pk")
        .values_list("pk", "created_at", "state", "has_payload")[:size]
    )


def snapshot_bound():
    """(received_at, id) of the newest call: a bulk resend leaves out calls that arrive later."""
    return Call.objects.order_by("-received_at", "-id").values_list("received_at", "id").first()
