"""Read-only queries of the dashboard. Each page costs a bounded number of queries, each one served
by an index; none counts the whole log."""

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Concat

from forwarding.delivery import attributes, watchdog
from forwarding.event_names import key_of
from forwarding.mapping import CONTACT_PLACEHOLDER, map_call, planned_requests
from forwarding.models import (
    Attempt,
    Call,
    CallType,
    CompanyLink,
    ContactLink,
    DataAttribute,
    Delivery,
    DeliveryTally,
    EventName,
    RateLimitWindow,
    Rule,
    Source,
    State,
)
from forwarding.transformations import store

PAGE_SIZE = 50
STATUS_CLASSES_INDEXED = ("4xx", "5xx")
HISTORY_SIZE = 100
ATTEMPTS_SHOWN = 20
TOP_CAUSES = 8
ATTRIBUTES_SHOWN = 2000
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
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- overview ------------------------------------------------------------------------------------


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


# -- data attributes -----------------------------------------------------------------------------


@dataclass
class AttributeUsage:
    """Custom data attributes Intercom holds (as last seen) against the workspace's limit."""

    used: int
    limit: int

    @property
    def share(self):
        return self.used / self.limit if self.limit else 1

    @property
    def percent(self):
        return min(100, round(100 * self.share))

    @property
    def free(self):
        return max(self.limit - self.used, 0)


def attribute_usage(workspace):
    return AttributeUsage(attributes.in_intercom(workspace).count(), attributes.limit())


def data_attributes(workspace, limit=ATTRIBUTES_SHOWN):
    """The workspace's attribute rows, contacts' then companies', by name (at most `limit`)."""
    return list(DataAttribute.objects.filter(workspace=workspace).order_by("model", "name")[:limit])


# -- delivery log --------------------------------------------------------------------------------


def encode_cursor(moment, pk):
    """A page position: microseconds since the epoch and the id, "1772359200123456.42"."""
    return f"{(moment - EPOCH) // timedelta(microseconds=1)}.{pk}"


# microseconds.id, ASCII digits only ("²".isdigit() is true, int("²") fails); the id fits the
# database's 64-bit integer and the moment Python's datetime (else None: no such position).
CURSOR_PATTERN = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,18})")


def decode_cursor(text):
    """(datetime, pk) from encode_cursor's text, or None when it is not one."""
    match = CURSOR_PATTERN.fullmatch(text or "")
    if match is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:
        return None


def cursor_problem(name, text):
    """The problem to show for a page position that is given but is none, or ""."""
    if text and decode_cursor(text) is None:
        return f"{name}: {text[:60]!r} is not a page position (the newest page is shown)"
    return ""


@dataclass
class Row:
    call: Call
    delivery: Delivery | None


@dataclass
class LogPage:
    rows: list
    older: str | None = None  # cursor of the next page (older calls)
    newer: str | None = None  # cursor of the previous page (newer calls)
    driver: str = "call"


def driver_of(log_filter):
    """Which table leads the query: deliveries when a filter has an index there, else calls."""
    if log_filter.q:
        return "call"  # the search indexes are on calls, and a search matches few rows
    if log_filter.state or log_filter.cause or log_filter.event or log_filter.user:
        return "delivery"
    if log_filter.status in STATUS_CLASSES_INDEXED:
        return "delivery"  # the partial indexes delivery_4xx and delivery_5xx
    if log_filter.warned:
        return "delivery"  # the partial index delivery_warned
    return "call"


def filtered(log_filter, now, driver):
    """The calls (driver "call") or deliveries (driver "delivery") a filter matches, and the name
    of their arrival-time column. Delivery.created_at is its call's received_at, and the
    delivery's pk is the call's id, so a cursor means the same in both."""
    if driver == "delivery":
        queryset, on_delivery, on_call, moment = Delivery.objects.all(), "", "call__", "created_at"
    else:
        queryset, on_delivery, on_call, moment = Call.objects.all(), "delivery__", "", "received_at"
    f = log_filter
    lookups = {}
    if f.state and _warned_leads(f, driver):
        # The partial index delivery_warned reads (created_at, call) in order; the state's index
        # would read every delivery of that state instead (delivered: most of the log). The state
        # as an expression keeps SQLite on the first.
        queryset = queryset.alias(state_text=Concat("state", Value(""))).filter(state_text=f.state)
    elif f.state:
        lookups[f"{on_delivery}state"] = f.state
    if f.cause:
        lookups[f"{on_delivery}error_cause"] = f.cause
    if f.event:
        lookups[f"{on_delivery}event_key"] = key_of(f.event)
    if f.user:
        lookups[f"{on_delivery}user_id"] = f.user
    if f.warned:
        lookups[f"{on_delivery}warned"] = True
    status = f.status_range()
    if status is None:
        lookups[f"{on_delivery}last_status__isnull"] = True
    elif status:
        lookups[f"{on_delivery}last_status__gte"], lookups[f"{on_delivery}last_status__lt"] = status
    if f.type:
        lookups[f"{on_call}type"] = f.type
    since, until = f.window(now)
    if since:
        lookups[f"{moment}__gte"] = since
    if until:
        lookups[f"{moment}__lt"] = until
    queryset = queryset.filter(**lookups)
    if f.source is not None:
        # "+ 0" keeps SQLite off the source_id index: sources are few and large, and that index
        # would mean sorting all of a source's calls; the arrival-time index reads them in order.
        queryset = queryset.alias(source_plus=F(f"{on_call}source_id") + 0).filter(source_plus=f.source)
    if f.q:
        queryset = queryset.filter(search(f.q, on_call))
    return queryset, moment


def _warned_leads(log_filter, driver):
    """Whether "has warnings" is the filter whose index leads (no narrower one is given)."""
    f = log_filter
    return driver == "delivery" and f.warned and not (f.event or f.user or f.cause)


def search(text, prefix=""):
    """Exact match on userId, anonymousId, messageId or email; an email also finds the users whose
    identify carried it. Each term has its own index: the users are looked up first (one query)
    and listed, because PostgreSQL cannot combine a subquery with the other indexes."""
    condition = (
        Q(**{f"{prefix}user_id": text})
        | Q(**{f"{prefix}anonymous_id": text})
        | Q(**{f"{prefix}message_id": text})
        | Q(**{f"{prefix}email": text})
    )
    if "@" in text:
        users = _distinct(Call.objects.filter(email=text).exclude(user_id=""), "user_id", 20)
        if users:
            condition |= Q(**{f"{prefix}user_id__in": users})
    return condition


def after(queryset, moment, position, newer=False):
    """Keyset pagination on (arrival time, id): the rows older (or newer) than `position`, in the
    order to read them. The plain bound first lets the index range do the work."""
    at, pk = position
    if newer:
        return queryset.filter(Q(**{f"{moment}__gt": at}) | Q(**{moment: at, "pk__gt": pk}), **{f"{moment}__gte": at})
    return queryset.filter(Q(**{f"{moment}__lt": at}) | Q(**{moment: at, "pk__lt": pk}), **{f"{moment}__lte": at})


def log_page(log_filter, now, cursor="", newer=False, size=PAGE_SIZE):
    """One page of the log, newest first, in one query; `cursor` from a previous page's older/newer."""
    driver = driver_of(log_filter)
    queryset, moment = filtered(log_filter, now, driver)
    if driver == "delivery":
        queryset = queryset.select_related("call", "call__source")
    else:
        queryset = queryset.select_related("delivery", "source")
    position = decode_cursor(cursor)
    if position is None:
        newer = False
    else:
        queryset = after(queryset, moment, position, newer)
    order = (moment, "pk") if newer else (f"-{moment}", "-pk")
    if driver == "delivery" and not log_filter.state and (log_filter.event or log_filter.user):
        found = _merged_by_state(queryset, order, size + 1)
    else:
        found = list(queryset.order_by(*order)[: size + 1])
    more = len(found) > size
    found = found[:size]
    if newer:
        found.reverse()
    page = LogPage([_row(item, driver) for item in found], driver=driver)
    if found:
        first, last = found[0], found[-1]
        if more or newer:
            page.older = encode_cursor(getattr(last, moment), last.pk)
        if position is not None and (more or not newer):
            page.newer = encode_cursor(getattr(first, moment), first.pk)
    return page


def _merged_by_state(queryset, order, limit):
    """The first `limit` deliveries in `order`, when the index is (event_key or user_id, state,
    created_at): each state's rows are read in order from the index (a UNION ALL of one bounded
    subquery per state), so a name or a user with many deliveries is never sorted whole. Two
    queries: the ids, then the rows."""
    parts, params = [], []
    for number, state in enumerate(State.values):
        part = queryset.filter(state=state).order_by(*order).values_list("pk", order[0].lstrip("-"))[:limit]
        compiled = sql_of(part)
        if compiled is None:
            return []  # the filter matches nothing, whatever the state
        sql, part_params = compiled
        parts.append(f"SELECT * FROM ({sql}) AS part_{number}")
        params.extend(part_params)
    direction = "DESC" if order[0].startswith("-") else "ASC"
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS parts ORDER BY 2 {direction}, 1 {direction} LIMIT {limit}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pks = [row[0] for row in cursor.fetchall()]
    rows = {d.pk: d for d in queryset.model.objects.filter(pk__in=pks).select_related("call", "call__source")}
    return [rows[pk] for pk in pks if pk in rows]


def sql_of(queryset):
    """A queryset's SQL and parameters, to be wrapped in a statement of our own; None when Django
    knows it matches nothing and builds no SQL (a filter on a value its column cannot hold: a
    source id past PostgreSQL's 32-bit integer, say)."""
    try:
        return queryset.query.sql_with_params()
    except EmptyResultSet:
        return None


def _row(item, driver):
    if driver == "delivery":
        return Row(item.call, item)
    try:
        delivery = item.delivery
    except ObjectDoesNotExist:
        delivery = None
    return Row(item, delivery)


def sources():
    return dict(Source.objects.order_by("name").values_list("pk", "name"))


# -- bulk resend ---------------------------------------------------------------------------------


def matching_deliveries(log_filter, now):
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


def bulk_preview(log_filter, now, upto=None, exact=False):
    """How many deliveries a bulk resend would look at, by state, and how many cannot be resent
    because their payload is gone, in one query over at most PREVIEW_CAP + 1 of them (`exact`:
    all). `upto` = (created_at, pk) bounds the snapshot."""
    cap = None if exact else PREVIEW_CAP
    queryset = _snapshot(matching_deliveries(log_filter, now), upto).order_by()
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


def bulk_total(log_filter, now, upto):
    """Every delivery a bulk resend will look at: the job's total (one count on the filter's index)."""
    return _snapshot(matching_deliveries(log_filter, now), upto).order_by().count()


def _snapshot(queryset, upto):
    if upto is None:
        return queryset
    return queryset.filter(created_at__lte=upto[0], pk__lte=upto[1])


def bulk_chunk(log_filter, job, size):
    """The next `size` deliveries of a bulk resend, oldest first: (pk, created_at, state, has_payload)."""
    queryset = _snapshot(matching_deliveries(log_filter, job.upto_created_at), (job.upto_created_at, job.upto_pk))
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


# -- call detail ---------------------------------------------------------------------------------


@dataclass
class Planned:
    method: str
    path: str
    body: str  # pretty JSON, or ""


@dataclass
class CallDetail:
    call: Call
    delivery: Delivery | None
    attempts: list
    payload_json: str = ""
    registry: EventName | None = None
    forwarded_name: str = ""
    contact_id: str = ""
    companies: dict = field(default_factory=dict)
    planned: list = field(default_factory=list)
    mapping_warnings: list = field(default_factory=list)
    skip_reason: str = ""
    mapping_error: str = ""
    message: dict | None = None  # the payload after the rules in force
    payload_after_json: str = ""  # pretty, when a rule changed it
    rules: list = field(default_factory=list)  # the Rules in force that apply to it now
    rule_warnings: list = field(default_factory=list)


def call_with_attempts(pk):
    """(call, its delivery or None, its latest ATTEMPTS_SHOWN attempts with their exchanges), or
    None when there is no such call: the call detail's rows, for the page and the API."""
    call = Call.objects.select_related("source", "delivery").filter(pk=pk).first()
    if call is None:
        return None
    try:
        delivery = call.delivery
    except ObjectDoesNotExist:
        delivery = None
    attempts = []
    if delivery is not None:
        attempts = list(
            Attempt.objects.filter(delivery_id=pk)
            .order_by("-started_at", "-id")
            .prefetch_related("exchanges")[:ATTEMPTS_SHOWN]
        )
    return call, delivery, attempts


def call_detail(pk, workspace):
    """A call, its delivery, its latest attempts with their exchanges, and what it maps to now
    with the ids and data attributes cached for `workspace` (workspace.shown())."""
    found = call_with_attempts(pk)
    if found is None:
        return None
    detail = CallDetail(*found)
    call, delivery = detail.call, detail.delivery
    if call.payload is not None:
        detail.payload_json = pretty(call.payload)
        _transform(detail)
    if delivery is not None and delivery.event_key:
        detail.registry = EventName.objects.filter(key=delivery.event_key).first()
        if detail.registry is not None:
            detail.forwarded_name = _forwarded_name(detail)
    if call.payload is not None and not detail.skip_reason:
        _plan(detail, workspace)
    return detail


def _transform(detail):
    """The payload after the transformation rules in force, the rules that apply, and a drop."""
    call = detail.call
    applied = store.apply(call.payload, call.source_id)
    detail.message = applied.message
    detail.rule_warnings = list(applied.warnings)
    if applied.applied:
        by_id = Rule.objects.in_bulk([rule_id for rule_id, _ in applied.applied])
        detail.rules = [by_id[rule_id] for rule_id, _ in applied.applied if rule_id in by_id]
        if not applied.dropped:
            detail.payload_after_json = pretty(applied.message)
    if applied.dropped:
        detail.skip_reason = f"dropped by rule {applied.dropped_by}"


def _forwarded_name(detail):
    """The event name the call goes out under now: the registry's, or the one a rule gives it."""
    registry, message = detail.registry, detail.message or {}
    after = message.get("event") if detail.call.type == CallType.TRACK else None
    if not isinstance(after, str) or key_of(after) == registry.key:
        return registry.name
    target = EventName.objects.filter(key=key_of(after)).values_list("name", flat=True).first()
    return target or after.strip()


def _plan(detail, workspace):
    """The Intercom requests the call maps to with what the relay knows now (ids, renames, and the
    data attributes each custom attribute is written to)."""
    call, delivery = detail.call, detail.delivery
    user_id = (delivery.user_id if delivery else "") or call.user_id or None
    names = {}
    if detail.forwarded_name:
        names = {"event_name": detail.forwarded_name, "page_event_name": detail.forwarded_name}
    try:
        mapped = map_call(
            detail.message, user_id=user_id, **{"page_event_name": settings.INTERCOM_PAGE_EVENT_NAME, **names}
        )
    except Exception as exc:  # mapping is pure; a bug there must not hide the call
        detail.mapping_error = f"{exc.__class__.__name__}: {exc}"
        return
    detail.skip_reason = mapped.skip_reason
    detail.mapping_warnings = list(mapped.warnings)
    if mapped.skip_reason:
        return
    mapped = _with_attributes(mapped, workspace, detail.mapping_warnings)
    if mapped.user_id:
        detail.contact_id = (
            ContactLink.objects.filter(workspace=workspace, user_id=mapped.user_id)
            .values_list("contact_id", flat=True)
            .first()
            or ""
        )
    companies = [mapped.company] if mapped.company is not None else list(mapped.companies)
    group_ids = [company["company_id"] for company in companies] + list(mapped.detach)
    if group_ids:
        detail.companies = dict(
            CompanyLink.objects.filter(workspace=workspace, group_id__in=group_ids).values_list(
                "group_id", "company_id"
            )
        )
    requests = planned_requests(
        mapped, contact_id=detail.contact_id or CONTACT_PLACEHOLDER, company_id=detail.companies
    )
    detail.planned = [Planned(method, path, "" if body is None else pretty(body)) for method, path, body in requests]


def _with_attributes(mapped, workspace, warnings):
    """`mapped` with the custom attributes of its contact and company bodies under the names they
    are written to now (attributes.preview: aliases, refused and ignored names), adding the
    preview's warnings. At most one query per model: the companies' names are previewed together."""
    changes = {}
    if mapped.contact is not None and mapped.contact.get("custom_attributes"):
        kept, notes = attributes.preview(workspace, "contact", mapped.contact["custom_attributes"])
        changes["contact"] = _with_custom(mapped.contact, kept)
        warnings += [note for note in notes if note not in warnings]
    bodies = [mapped.company] if mapped.company is not None else list(mapped.companies)
    names = {name: name for body in bodies for name in body.get("custom_attributes") or {}}
    if names:
        # Previewed with each name as its own value: {attribute written: trait name}.
        kept, notes = attributes.preview(workspace, "company", names)
        written_as = {name: attribute for attribute, name in kept.items()}
        warnings += [note for note in notes if note not in warnings]
        renamed = []
        for body in bodies:
            values = body.get("custom_attributes") or {}
            renamed.append(_with_custom(body, {written_as[k]: v for k, v in values.items() if k in written_as}))
        if mapped.company is not None:
            changes["company"] = renamed[0]
        else:
            changes["companies"] = tuple(renamed)
    return replace(mapped, **changes) if changes else mapped


def _with_custom(body, custom):
    """A copy of a request body with its custom_attributes replaced (left out when empty)."""
    body = {key: value for key, value in body.items() if key != "custom_attributes"}
    if custom:
        body["custom_attributes"] = custom
    return body


def pretty(value):
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


# -- user history --------------------------------------------------------------------------------


@dataclass
class Person:
    """Who a search found: a userId, or an anonymousId no identify has linked to a user."""

    user_id: str = ""
    anonymous_id: str = ""
    found_by: str = ""  # "userId", "email" or "anonymousId"

    @property
    def label(self):
        return self.user_id or self.anonymous_id


def find_people(text, limit=10):
    """The people an exact userId, email or anonymousId names (an email may name several users)."""
    if Delivery.objects.filter(user_id=text).exists():
        return [Person(user_id=text, found_by="userId")]
    by_email = _distinct(Call.objects.filter(email=text).exclude(user_id=""), "user_id", limit)
    if by_email:
        return [Person(user_id=user_id, found_by="email") for user_id in by_email]
    linked = _distinct(Call.objects.filter(anonymous_id=text).exclude(user_id=""), "user_id", limit)
    if linked:
        return [Person(user_id=user_id, found_by="anonymousId") for user_id in linked]
    if Call.objects.filter(anonymous_id=text).exists():
        return [Person(anonymous_id=text, found_by="anonymousId")]
    return []


RECENT_USERS_SCAN = 500  # newest calls read to find recent users: bounded whatever the table's size


def recent_users(limit=10):
    """The userIds of the newest calls (up to `limit`, newest first): a hint of who is there."""
    found = []
    recent = Call.objects.exclude(user_id="").order_by("-received_at", "-id").values_list("user_id", flat=True)
    for user_id in recent[:RECENT_USERS_SCAN]:
        if user_id not in found:
            found.append(user_id)
            if len(found) == limit:
                break
    return found


def _distinct(queryset, column, limit):
    return list(queryset.order_by().values_list(column, flat=True).distinct()[:limit])


@dataclass
class History:
    person: Person
    rows: list  # oldest first
    earlier: str | None = None  # cursor: older calls than these
    later: str | None = None  # cursor: newer calls than these
    contact_id: str = ""
    companies: list = field(default_factory=list)  # (group_id, Intercom company id or "")
    anonymous_ids: list = field(default_factory=list)
    emails: list = field(default_factory=list)
    failed: int = 0


def user_history(person, workspace, cursor="", newer=False, size=HISTORY_SIZE):
    """A person's calls in the order received: the newest `size` (or those around `cursor`), with
    their Intercom contact and companies as cached for `workspace` (workspace.shown())."""
    history = History(person, [])
    if person.user_id:
        identities = list(
            Call.objects.filter(user_id=person.user_id, type=CallType.IDENTIFY)
            .order_by()
            .values_list("anonymous_id", "email")
            .distinct()[:50]
        )
        history.anonymous_ids = sorted({anon for anon, _ in identities if anon})[:20]
        history.emails = sorted({email for _, email in identities if email})[:5]
        # Anonymous calls are the user's once attributed; those still unattributed are included
        # when an identify of this user carried their anonymousId.
        condition = Q(user_id=person.user_id)
        if history.anonymous_ids:
            condition |= Q(anonymous_id__in=history.anonymous_ids, user_id="")
    else:
        condition = Q(anonymous_id=person.anonymous_id)
    queryset = Delivery.objects.filter(condition).select_related("call")
    position = decode_cursor(cursor)
    if position is None:
        newer = False
    else:
        queryset = after(queryset, "created_at", position, newer)
    order = ("created_at", "pk") if newer else ("-created_at", "-pk")
    found = list(queryset.order_by(*order)[: size + 1])
    more = len(found) > size
    found = found[:size]
    if not newer:
        found.reverse()  # shown oldest first
    history.rows = [Row(delivery.call, delivery) for delivery in found]
    if found:
        first, last = found[0], found[-1]
        if (not newer and more) or (newer and position is not None):
            history.earlier = encode_cursor(first.created_at, first.pk)
        if (newer and more) or (not newer and position is not None):
            history.later = encode_cursor(last.created_at, last.pk)
    if person.user_id:
        history.contact_id = (
            ContactLink.objects.filter(workspace=workspace, user_id=person.user_id)
            .values_list("contact_id", flat=True)
            .first()
            or ""
        )
        group_ids = _distinct(Call.objects.filter(user_id=person.user_id, type=CallType.GROUP), "group_id", 50)
        links = dict(
            CompanyLink.objects.filter(workspace=workspace, group_id__in=group_ids).values_list(
                "group_id", "company_id"
            )
        )
        history.companies = [(group_id, links.get(group_id, "")) for group_id in sorted(group_ids)]
        history.failed = Delivery.objects.filter(user_id=person.user_id, state=State.FAILED).count()
    return history
