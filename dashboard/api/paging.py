"""Keyset paging for the API's lists: `?limit=` (1 to 200, 50 by default) rows per page and
`?after=<cursor>` from the previous page's `next`. Never a COUNT: a page reads one more row than it
shows to know whether there is a next one.

The log's lists (calls, deliveries) use the delivery log's cursors (dashboard.queries.cursors: arrival
time and id, newest first); the registries (event names, attributes, rules) a cursor of their
ordering's whole-number columns, "12" or "3.12"."""

import re

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from dashboard.api.base import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIMIT_PATTERN = re.compile(r"[0-9]{1,4}")
# Whole numbers that fit the database's 64-bit integers, joined by dots.
KEY_PATTERN = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})*")

LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    description=f"Rows per page, 1 to {MAX_LIMIT} ({DEFAULT_LIMIT} when absent).",
)
# An empty ?after= is the first page.
AFTER = OpenApiParameter(
    "after",
    {"type": "string", "pattern": r"^(-?[0-9]{1,19}\.[0-9]{1,18})?$"},
    description="The `next` of the previous page: the page after it.",
)
KEYSET_AFTER = OpenApiParameter(
    "after",
    {"type": "string", "pattern": r"^([0-9]{1,18}(\.[0-9]{1,18})*)?$"},
    description="The `next` of the previous page: the page after it.",
)


def limit_of(request):
    """?limit=, checked (400 when it is not 1 to MAX_LIMIT)."""
    if "limit" not in request.query_params:
        return DEFAULT_LIMIT
    raw = request.query_params["limit"]
    if not LIMIT_PATTERN.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit: {raw[:20]!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def keyset(queryset, fields, request):
    """(rows, next cursor or None) of `queryset` ordered by the whole-number `fields` (ascending,
    the last unique), from ?after= and ?limit=."""
    size = limit_of(request)
    raw = request.query_params.get("after", "")
    if raw:
        values = raw.split(".") if KEY_PATTERN.fullmatch(raw) else []
        if len(values) != len(fields):
            raise invalid(f"after: {raw[:60]!r} is not a page position (use the previous page's next)")
        queryset = queryset.filter(beyond(fields, [int(value) for value in values]))
    rows = list(queryset.order_by(*fields)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    cursor = ".".join(str(getattr(rows[-1], name)) for name in fields) if more else None
    return rows, cursor


def beyond(fields, values):
    """Rows after `values` in the order of `fields` (lexicographic), the first bound plain so that
    an index range does the work."""
    condition = Q()
    for index, name in enumerate(fields):
        step = Q(**{f"{name}__gt": values[index]}, **dict(zip(fields[:index], values[:index], strict=True)))
        condition |= step
    return Q(condition, **{f"{fields[0]}__gte": values[0]})


def page(name, child):
    """The serializer of one page of `child` rows (for the OpenAPI description)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "results": child(many=True),
            "next": serializers.CharField(
                allow_null=True, help_text="The cursor of the next page (?after=), or null on the last page."
            ),
            "__doc__": f"One page of {child.__name__.removesuffix('Out').lower()} rows, in keyset order.",
        },
    )
