"""The delivery log: a filter's calls or deliveries, one page in one query, newest first."""

from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Concat

from dashboard.queries.cursors import encode_cursor, positioned
from forwarding.event_names import key_of
from forwarding.models import Call, Delivery, Source, State

PAGE_SIZE = 50
STATUS_CLASSES_INDEXED = ("4xx", "5xx")


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
        users = distinct(Call.objects.filter(email=text).exclude(user_id=""), "user_id", 20)
        if users:
            condition |= Q(**{f"{prefix}user_id__in": users})
    return condition


def log_page(log_filter, now, cursor="", newer=False, size=PAGE_SIZE):
    """One page of the log, newest first, in one query; `cursor` from a previous page's older/newer."""
    driver = driver_of(log_filter)
    queryset, moment = filtered(log_filter, now, driver)
    if driver == "delivery":
        queryset = queryset.select_related("call", "call__source")
    else:
        queryset = queryset.select_related("delivery", "source")
    queryset, order, position, newer = positioned(queryset, moment, cursor, newer)
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


def distinct(queryset, column, limit):
    return list(queryset.order_by().values_list(column, flat=True).distinct()[:limit])
