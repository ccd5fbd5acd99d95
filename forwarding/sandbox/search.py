"""Contact search queries (POST /contacts/search): a single filter, or AND/OR of filters."""

import re

from forwarding.sandbox.errors import ApiError


def field_value(data, name):
    """A contact field, or `custom_attributes.<name>`."""
    if name.startswith("custom_attributes."):
        return data["custom_attributes"].get(name.partition(".")[2])
    return data.get(name)


def sort_key(value):
    """Sorts mixed and missing values without TypeError (missing last)."""
    return (value is None, str(type(value)), value if value is not None else 0)


OPERATORS = {
    "=": lambda a, v: a == v,
    "!=": lambda a, v: a != v,
    "IN": lambda a, v: a in (v or []),
    "NIN": lambda a, v: a not in (v or []),
    "<": lambda a, v: a is not None and a < v,
    "<=": lambda a, v: a is not None and a <= v,
    ">": lambda a, v: a is not None and a > v,
    ">=": lambda a, v: a is not None and a >= v,
    "~": lambda a, v: isinstance(a, str) and str(v).lower() in a.lower(),
    "!~": lambda a, v: not (isinstance(a, str) and str(v).lower() in a.lower()),
    "^": lambda a, v: isinstance(a, str) and a.startswith(str(v)),
    "$": lambda a, v: isinstance(a, str) and a.endswith(str(v)),
}


def matches(data, query):
    """Whether a contact satisfies a search query (single filter, or AND/OR of filters)."""
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        parts = [matches(data, sub) for sub in query.get("value") or []]
        return all(parts) if operator == "AND" else any(parts)
    if operator not in OPERATORS or not query.get("field"):
        raise ApiError(400, "parameter_invalid", f"Unsupported search filter {query!r}")  # assumed
    actual, wanted = field_value(data, query["field"]), query.get("value")
    if isinstance(actual, int | float) and isinstance(wanted, str) and re.fullmatch(r"-?\d+", wanted):
        wanted = int(wanted)  # Intercom's examples send timestamps as strings
    try:
        return OPERATORS[operator](actual, wanted)
    except TypeError:
        return False
