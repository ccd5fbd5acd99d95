"""The operations a transformation rule runs on a Segment call, and the type conversion of change_type.

Pure: no Django. `prepare(op)` turns one operation spec into a Step once (paths split ahead), and
`step(message, notes)` edits `message` in place, appends "<path>: <what happened>" to `notes` and
returns True when the call is dropped. Validation and the "rule <id>: " prefix live in rules.py; a
step assumes a valid spec.

Decisions where the design is silent:

- Paths walk objects only: a segment below a list, string or number reads as absent (no list indexes).
- Writing creates missing intermediate objects. One that is present but not an object (null included)
  is left alone and nothing is written, with a note; rename_property then keeps its source.
- rename_property leaves the parent it emptied in place (`properties.cart` becomes {}).
- rename_property and copy_field overwrite an existing destination with a note; set_constant overwrites
  silently (the operator wrote that value on purpose).
- Copied and constant values are deep copies, so no two places in a call share one object.
- change_case notes every non-string, null included (change_type leaves null alone silently, as specified).
"""

import copy
import json
import math
import re
from collections.abc import Callable

NUMBER, TEXT, BOOLEAN = "number", "text", "boolean"
TYPES = (NUMBER, TEXT, BOOLEAN)
CASES = {"upper": str.upper, "lower": str.lower}

# The keys each op needs besides "op" (validation refuses any other key).
FIELDS = {
    "rename_event": ("to",),
    "rename_property": ("from", "to"),
    "change_type": ("path", "to"),
    "change_case": ("path", "to"),
    "delete_property": ("path",),
    "copy_field": ("from", "to"),
    "set_constant": ("path", "value"),
    "drop": (),
}
# Keys holding paths the op changes: they must stay under the rule's root (rename removes its source too).
WRITES = {
    "rename_property": ("from", "to"),
    "change_type": ("path",),
    "change_case": ("path",),
    "delete_property": ("path",),
    "copy_field": ("to",),
    "set_constant": ("path",),
}
# Keys holding paths the op only reads: any path of the call.
READS = {"copy_field": ("from",)}
# Keys whose path may create keys in the call: their names must be ones Intercom accepts.
CREATES = {"rename_property": "to", "copy_field": "to", "set_constant": "path"}

MISSING = object()  # what lookup() gives for an absent path (None is a present null)
Step = Callable[[dict, list[str]], bool]

_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_SHOWN = 40  # characters of a value quoted in a note


# --- values -----------------------------------------------------------------------------------


def convert(value, to: str):
    """(`value` as type `to`, None), or (`value` unchanged, why it could not be converted)."""
    if value is None:
        return None, None
    return _CONVERTERS[to](value)


def _to_number(value):
    """Numbers stay; strings of a finite decimal number become an int or a float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        text = value.strip()
        try:
            if _INTEGER.fullmatch(text):
                return int(text), None
            # The regex keeps out "nan", "inf", "1_000" and other spellings float() would take.
            if _DECIMAL.fullmatch(text) and math.isfinite(number := float(text)):
                return number, None
        except ValueError:  # past Python's int digit limit
            pass
    return value, _refused(value, "a number")


def _to_text(value):
    """Strings stay; numbers and booleans are written as JSON would; objects and arrays become compact JSON."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return repr(value), None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False), None
    return value, _refused(value, "convertible to text")


def _to_boolean(value):
    """Booleans stay; true/yes/1 and false/no/0 (any case) and the numbers 1 and 0 become booleans."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE, None
    elif isinstance(value, (int, float)) and value in (0, 1):
        return value == 1, None
    return value, _refused(value, "a boolean")


_CONVERTERS = {NUMBER: _to_number, TEXT: _to_text, BOOLEAN: _to_boolean}


def _refused(value, what):
    return f"{show(value)} is not {what}; left as it is"


def show(value) -> str:
    """`value` as JSON, cut short enough for a one-line note."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def copy_json(value):
    """A deep copy of a JSON-shaped value: objects and arrays copied, scalars (immutable) shared."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return copy.deepcopy(value)  # not JSON, rare: the slow general copy


# --- paths ------------------------------------------------------------------------------------


def split(path: str) -> tuple[str, ...]:
    """The segments of a dot-separated path."""
    return tuple(path.split("."))


def lookup(message: dict, parts: tuple[str, ...]):
    """The value at `parts`, or MISSING."""
    node = message
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _holder(message, parts):
    """The object that holds the last segment of `parts`, or None when there is none."""
    node = lookup(message, parts[:-1])
    return node if isinstance(node, dict) else None


def _write(message, parts, value):
    """Sets `value` at `parts`, creating missing objects: (the value replaced or MISSING, a problem or None)."""
    node = message
    for depth, part in enumerate(parts[:-1], start=1):
        if part not in node:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            return MISSING, f"{'.'.join(parts[:depth])} is not an object"
    old = node.get(parts[-1], MISSING)
    node[parts[-1]] = value
    return old, None


# --- operations -------------------------------------------------------------------------------


def prepare(op: dict) -> Step:
    """The step running the (valid) operation `op`."""
    return _PREPARERS[op["op"]](op)


def _rename_event(op):
    to = op["to"]

    def step(message, notes):
        message["event"] = to
        return False

    return step


def _rename_property(op):
    source, target = split(op["from"]), split(op["to"])

    def step(message, notes):
        holder = _holder(message, source)
        if holder is None or source[-1] not in holder:
            return False
        # Taken out before writing, so a move to a path under (or over) the source works.
        value = holder.pop(source[-1])
        old, problem = _write(message, target, value)
        if problem:
            holder[source[-1]] = value
            notes.append(f"{op['to']}: {problem}; {op['from']} not moved")
        elif old is not MISSING:
            notes.append(f"{op['to']}: overwritten by {op['from']} (was {show(old)})")
        return False

    return step


def _change_type(op):
    parts, to = split(op["path"]), op["to"]

    def step(message, notes):
        holder = _holder(message, parts)
        if holder is not None and parts[-1] in holder:
            holder[parts[-1]], problem = convert(holder[parts[-1]], to)
            if problem:
                notes.append(f"{op['path']}: {problem}")
        return False

    return step


def _change_case(op):
    parts, change = split(op["path"]), CASES[op["to"]]

    def step(message, notes):
        holder = _holder(message, parts)
        if holder is not None and parts[-1] in holder:
            value = holder[parts[-1]]
            if isinstance(value, str):
                holder[parts[-1]] = change(value)
            else:
                notes.append(f"{op['path']}: {show(value)} is not text; case left as it is")
        return False

    return step


def _delete_property(op):
    parts = split(op["path"])

    def step(message, notes):
        holder = _holder(message, parts)
        if holder is not None:
            holder.pop(parts[-1], None)
        return False

    return step


def _copy_field(op):
    source, target = split(op["from"]), split(op["to"])

    def step(message, notes):
        value = lookup(message, source)
        if value is MISSING:
            notes.append(f"{op['from']}: absent; nothing copied to {op['to']}")
            return False
        old, problem = _write(message, target, copy_json(value))
        if problem:
            notes.append(f"{op['to']}: {problem}; {op['from']} not copied")
        elif old is not MISSING:
            notes.append(f"{op['to']}: overwritten by {op['from']} (was {show(old)})")
        return False

    return step


def _set_constant(op):
    parts, value = split(op["path"]), op["value"]

    def step(message, notes):
        _, problem = _write(message, parts, copy_json(value))
        if problem:
            notes.append(f"{op['path']}: {problem}; not set")
        return False

    return step


def _drop(op):
    return lambda message, notes: True


_PREPARERS = {
    "rename_event": _rename_event,
    "rename_property": _rename_property,
    "change_type": _change_type,
    "change_case": _change_case,
    "delete_property": _delete_property,
    "copy_field": _copy_field,
    "set_constant": _set_constant,
    "drop": _drop,
}
