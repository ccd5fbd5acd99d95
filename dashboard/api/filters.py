"""The delivery log's filters (dashboard.filters.LogFilter) as the API takes them: query parameters
of the lists, or the `filters` object of a bulk resend; described once for the OpenAPI schema."""

import re

from drf_spectacular.utils import OpenApiParameter

from dashboard.api.base import invalid
from dashboard.filters import MAX_TEXT, RANGES, LogFilter
from forwarding.models import CallType, State

TEXT = {"type": "string", "maxLength": MAX_TEXT}
YES_NO = ["1", "0", "true", "false", "yes", "no", "on", "off"]
# name: (schema, description)
FILTERS = {
    "state": ({"type": "string", "enum": State.values}, "The delivery's state."),
    "type": ({"type": "string", "enum": CallType.values}, "The call's type."),
    "event": (TEXT, "An event name as the registry knows it (ignoring case; the page event name included)."),
    "user": (TEXT, "The userId the delivery is forwarded for (anonymous calls attributed to them included)."),
    "q": (TEXT, "Exactly a userId, anonymousId, messageId or email."),
    "status": (
        {"type": "string", "pattern": "^([1-5][0-9][0-9]|[1-5]xx|none)$"},
        "The last HTTP status from Intercom: 404, a class such as 5xx, or none (no answer).",
    ),
    "cause": ({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,50}$"}, "The error cause, e.g. http_400, timeout."),
    "source": ({"type": "string", "pattern": "^[0-9]{1,18}$"}, "A source id."),
    "range": ({"type": "string", "enum": list(RANGES)}, "Received within the last 1h, 24h, 7d or 30d."),
    "since": ({"type": "string", "format": "date-time"}, "Received at or after (ISO 8601; UTC without offset)."),
    "until": ({"type": "string", "format": "date-time"}, "Received before (ISO 8601; UTC without offset)."),
    "warned": ({"type": "string", "enum": YES_NO}, "1: only deliveries whose last attempt had warnings."),
}


def optional(schema):
    """`schema`, or "" (an empty parameter is no filter, as in the log's query strings)."""
    if "enum" in schema:
        return {**schema, "enum": ["", *schema["enum"]]}
    if "pattern" in schema:
        return {**schema, "pattern": f"^({schema['pattern'][1:-1]})?$"}
    if "format" in schema:
        return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
    return schema


PARAMETERS = [OpenApiParameter(name, optional(schema), description=text) for name, (schema, text) in FILTERS.items()]

# The bulk resend's body: the same filters, text as in a query string (warned may be true/false).
BODY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "The delivery log's filters (as its query string; none: every delivery).",
    "properties": {
        **{name: {**optional(schema), "description": text} for name, (schema, text) in FILTERS.items()},
        "warned": {"anyOf": [{"type": "boolean"}, optional(FILTERS["warned"][0])], "description": FILTERS["warned"][1]},
    },
}


def as_described(values):
    """Problems of values the description refuses but LogFilter.parse would take once stripped: too
    long, or not exactly one of the listed values or forms (" failed", "5xx\t")."""
    problems = []
    for name, (schema, _) in FILTERS.items():
        value = values.get(name)
        if not isinstance(value, str) or value == "":
            continue
        if len(value) > MAX_TEXT:
            problems.append(f"{name}: longer than {MAX_TEXT} characters")
        elif "enum" in schema and value not in schema["enum"]:
            problems.append(f"{name}: unknown value {value[:60]!r}")
        elif "pattern" in schema and not re.fullmatch(schema["pattern"].strip("^$"), value):
            problems.append(f"{name}: {value[:60]!r} is not {text_of(name)}")
        elif "format" in schema and value != value.strip():
            problems.append(f"{name}: {value[:60]!r} is not a date and time (YYYY-MM-DDTHH:MM)")
    return problems


def text_of(name):
    return {"status": "an HTTP status, a class such as 5xx, or none", "cause": "an error cause"}.get(name, "an id")


def from_query(params):
    """The LogFilter of a list's query parameters (400 listing every bad one)."""
    values = {name: params.get(name) for name in FILTERS}
    problems = as_described(values)
    if problems:
        raise invalid(*problems)
    log_filter, problems = LogFilter.parse(params)
    if problems:
        raise invalid(*problems)
    return log_filter


def from_body(filters):
    """The LogFilter of a bulk resend's `filters` object (400 listing every bad one)."""
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise invalid("filters: must be an object of the log's filters")
    problems, values = [], {}
    for name, value in filters.items():
        if name not in FILTERS:
            problems.append(f"filters: unknown filter {str(name)[:50]!r} (known: {', '.join(FILTERS)})")
        elif name == "warned" and isinstance(value, bool):
            values[name] = "1" if value else "0"
        elif isinstance(value, str):
            values[name] = value
        else:
            problems.append(f"filters.{name}: must be text")
    found = as_described(values)
    if not found:
        log_filter, found = LogFilter.parse(values)
    problems += [f"filters.{problem}" for problem in found]
    if problems:
        raise invalid(*problems)
    return log_filter
