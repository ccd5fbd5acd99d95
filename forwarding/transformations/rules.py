"""Transformation rules: validate a rule spec, tell whether it matches a call, apply a list of rules in order.

Pure: no Django, no ORM, no settings. A rule spec is the JSON-serializable dict the dashboard stores and
`manage.py transformations export` writes:

    {"id": 7, "revision": 3, "name": "cart total is revenue", "enabled": true,
     "source": null | "12", "call_type": "track" | "page" | "identify" | "group",
     "event": null | "Order Completed",
     "condition": null | {"path": "properties.plan", "equals": "pro"} | {"path": "...", "exists": true},
     "operations": [{"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}]}

Speed: apply() runs on every delivery. compile_rules(specs) does the per-rule work once (paths split,
event name case-folded, disabled rules left out); apply() takes that list (or raw specs, compiled on
the fly) and never validates: run validate() when a rule is saved or imported. The call is copied
lazily, when the first rule matches. When no rule matches, Applied.message IS the caller's dict:
callers must not mutate it (copy it first if they need to).

Decisions where the design is silent:

- Event filters ignore surrounding blanks as well as case (strip().casefold()), as the event-name
  registry does (forwarding.event_names.key_of).
- `equals` compares JSON values: 1 equals 1.0, true never equals 1, "1" never equals 1; an absent path
  equals nothing, not even null. `exists: false` matches when the path is absent.
- A missing `enabled` means enabled; missing name, source, event and condition mean null. Keys a spec
  or an operation does not know are problems (a typo such as "conditon" must not pass silently).
- Write paths name a key under the root (`properties` alone is refused); the keys they create are held
  to name_problems(key=True), the name given by rename_event to name_problems().
- Applied.dropped tells a drop apart even when the dropping rule has no id yet (a preview).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from forwarding.mapping import FORBIDDEN_KEY_CHARACTERS
from forwarding.transformations.operations import (
    CASES,
    CREATES,
    FIELDS,
    MISSING,
    READS,
    TYPES,
    WRITES,
    Step,
    copy_json,
    lookup,
    prepare,
    show,
    split,
)

CALL_TYPES = ("track", "page", "identify", "group")
ROOTS = {"track": "properties", "page": "properties", "identify": "traits", "group": "traits"}
SPEC_KEYS = frozenset({"id", "revision", "name", "enabled", "source", "call_type", "event", "condition", "operations"})
MAX_NAME_LENGTH = 255
MAX_PATH_LENGTH = 255
MAX_PATH_SEGMENTS = 10
_NAME_FORBIDDEN = frozenset(".$")  # Intercom's docs forbid these in event names


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A valid, enabled rule spec with its per-call work done ahead."""

    id: int | None
    revision: int | None
    call_type: str
    source: str | None
    event_key: str | None  # the event filter, stripped and case-folded
    condition: tuple | None  # (path segments, "equals" | "exists", expected value)
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Applied:
    """The call after the rules, which rules ran, what they could not do, and whether one dropped it."""

    message: dict  # a copy when any rule ran; otherwise the input itself, not to be mutated
    applied: tuple[tuple[int | None, int | None], ...] = ()  # (id, revision) of each rule that ran, in order
    warnings: tuple[str, ...] = ()  # "rule <id>: <path>: <what happened>"
    dropped_by: int | None = None  # id of the rule whose drop ended the run
    dropped: bool = False


# --- applying ---------------------------------------------------------------------------------


def compile_rules(specs: Iterable[dict]) -> list[CompiledRule]:
    """The enabled rules among the (valid) `specs`, in order, ready for apply()."""
    return [rule for rule in map(_compile, specs) if rule is not None]


def _compile(spec):
    if isinstance(spec, CompiledRule):
        return spec
    if spec.get("enabled") is False:
        return None
    condition = spec.get("condition")
    if condition is not None:
        kind = "exists" if "exists" in condition else "equals"
        condition = (split(condition["path"]), kind, condition[kind])
    event, source = spec.get("event"), spec.get("source")
    return CompiledRule(
        id=spec.get("id"),
        revision=spec.get("revision"),
        call_type=spec["call_type"],
        source=None if source is None else str(source),
        event_key=None if event is None else event.strip().casefold(),
        condition=condition,
        steps=tuple(prepare(op) for op in spec["operations"]),
    )


def matches(spec: dict | CompiledRule, message: dict, source_id) -> bool:
    """Whether the (valid) rule applies to `message` received from source `source_id`."""
    rule = _compile(spec)
    return rule is not None and _matches(rule, message, source_id)


def _matches(rule, message, source_id):
    if message.get("type") != rule.call_type:
        return False
    if rule.source is not None and (source_id is None or str(source_id) != rule.source):
        return False
    if rule.event_key is not None:
        name = message.get("name" if rule.call_type == "page" else "event")
        if not isinstance(name, str) or name.strip().casefold() != rule.event_key:
            return False
    if rule.condition is None:
        return True
    parts, kind, expected = rule.condition
    value = lookup(message, parts)
    if kind == "exists":
        return (value is not MISSING) == expected
    return value is not MISSING and same_json(value, expected)


def same_json(a, b) -> bool:
    """Whether two JSON values are equal as JSON (numbers by value, booleans never numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def apply(specs: Iterable[dict | CompiledRule], message: dict, source_id) -> Applied:
    """Runs the matching rules of `specs` in order, each on the result of the ones before; never mutates `message`."""
    current, applied, warnings = message, [], []
    for spec in specs:
        rule = _compile(spec)
        if rule is None or not _matches(rule, current, source_id):
            continue
        if current is message:
            current = copy_json(message)
        applied.append((rule.id, rule.revision))
        notes = []
        dropped = _run(rule.steps, current, notes)
        label = "rule (new)" if rule.id is None else f"rule {rule.id}"
        warnings.extend(f"{label}: {note}" for note in notes)
        if dropped:
            return Applied(current, tuple(applied), tuple(warnings), rule.id, dropped=True)
    return Applied(current, tuple(applied), tuple(warnings))


def _run(steps, message, notes):
    """Runs `steps` until one drops the call; whether one did."""
    return any(step(message, notes) for step in steps)


# --- validation -------------------------------------------------------------------------------


def name_problems(name, *, key: bool = False) -> list[str]:
    """Why Intercom would refuse `name` as an event name (or, with key, as a property or attribute key)."""
    what = "key" if key else "event name"
    if not isinstance(name, str):
        return [f"{what} must be text"]
    if not name.strip():
        return [f"{what} is empty"]
    problems = []
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    forbidden = FORBIDDEN_KEY_CHARACTERS if key else _NAME_FORBIDDEN
    if bad := sorted({char for char in name if char in forbidden}):
        problems.append(f"{what} {name!r} contains {' '.join(map(repr, bad))}, which Intercom refuses")
    return problems


def validate(spec) -> list[str]:
    """Every problem of a rule spec, for an operator to read; [] when it is valid."""
    if not isinstance(spec, dict):
        return ["a rule must be an object"]
    problems = [f"{key}: unknown key" for key in sorted(set(spec) - SPEC_KEYS, key=str)]
    for key in ("id", "revision"):
        value = spec.get(key)
        if value is not None and (type(value) is not int or value < 1):
            problems.append(f"{key}: must be a positive whole number or null")
    if not isinstance(spec.get("name", ""), str | None):
        problems.append("name: must be text or null")
    if not isinstance(spec.get("enabled", True), bool):
        problems.append("enabled: must be true or false")
    source = spec.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        problems.append("source: must be null (any source) or a source id as text")
    call_type = spec.get("call_type")
    if call_type not in CALL_TYPES:
        problems.append(f"call_type: must be one of {', '.join(CALL_TYPES)}")
        call_type = None
    problems += _event_problems(spec.get("event"), call_type)
    problems += _condition_problems(spec.get("condition"))
    problems += _operations_problems(spec.get("operations", MISSING), call_type)
    return problems


def _event_problems(event, call_type):
    if event is None:
        return []
    if not isinstance(event, str) or not event.strip() or len(event) > MAX_NAME_LENGTH:
        return [f"event: must be null (any) or a name of 1 to {MAX_NAME_LENGTH} characters"]
    if call_type in ("identify", "group"):
        return [f"event: {call_type} rules have no event name to match; use null"]
    return []


def _condition_problems(condition):
    if condition is None:
        return []
    if not isinstance(condition, dict) or "path" not in condition:
        return ['condition: must be null or {"path": ..., "equals": value} or {"path": ..., "exists": true}']
    problems = [f"condition: path: {problem}" for problem in path_problems(condition["path"])]
    kinds = set(condition) - {"path"}
    if kinds not in ({"equals"}, {"exists"}):
        problems.append('condition: needs exactly one of "equals" and "exists", and nothing else')
    elif "exists" in condition and not isinstance(condition["exists"], bool):
        problems.append("condition: exists: must be true or false")
    elif "equals" in condition and not _is_json(condition["equals"]):
        problems.append("condition: equals: must be a JSON value")
    return problems


def _operations_problems(operations, call_type):
    if operations is MISSING:
        return ["operations: missing"]
    if not isinstance(operations, list) or not operations:
        return ["operations: must be a list of at least one operation"]
    problems = []
    for index, op in enumerate(operations, start=1):
        problems += _operation_problems(f"operation {index}", op, call_type)
    return problems


def _operation_problems(where, op, call_type):
    if not isinstance(op, dict):
        return [f"{where}: must be an object"]
    name = op.get("op")
    if not isinstance(name, str) or name not in FIELDS:
        return [f"{where}: unknown op {show(name)}; one of {', '.join(FIELDS)}"]
    where = f"{where} ({name})"
    problems = [f"{where}: {key}: missing" for key in FIELDS[name] if key not in op]
    problems += [f"{where}: {key}: unknown key" for key in sorted(set(op) - {"op", *FIELDS[name]}, key=str)]
    root = ROOTS.get(call_type)
    for key in WRITES.get(name, ()):
        if key in op:
            problems += [f"{where}: {key}: {problem}" for problem in _write_path_problems(op[key], root, call_type)]
    for key in READS.get(name, ()):
        if key in op:
            problems += [f"{where}: {key}: {problem}" for problem in path_problems(op[key])]
    return problems + [f"{where}: {problem}" for problem in _detail_problems(name, op, call_type)]


def _detail_problems(name, op, call_type):
    """Problems of the op's own values (paths already checked)."""
    problems = []
    if name == "rename_event":
        if call_type not in (None, "track"):
            problems.append("only a track rule can rename the event")
        if "to" in op:
            problems += [f"to: {problem}" for problem in name_problems(op["to"])]
    elif name in ("change_type", "change_case") and "to" in op:
        allowed = TYPES if name == "change_type" else tuple(CASES)
        if op["to"] not in allowed:
            problems.append(f"to: must be one of {', '.join(allowed)}")
    elif name == "set_constant" and "value" in op and not _is_json(op["value"]):
        problems.append("value: must be a JSON value")
    if name == "rename_property" and "to" in op and op.get("from") == op["to"]:
        problems.append("from and to are the same path")
    created = op.get(CREATES.get(name, ""))
    if isinstance(created, str):
        for segment in created.split(".")[1:]:
            problems += [f"{CREATES[name]}: {problem}" for problem in name_problems(segment, key=True) if segment]
    return problems


def path_problems(path) -> list[str]:
    """Why `path` is not a dot-separated path of the call."""
    if not isinstance(path, str):
        return ["must be a dot-separated path (text)"]
    problems = []
    if len(path) > MAX_PATH_LENGTH:
        problems.append(f"longer than {MAX_PATH_LENGTH} characters")
    parts = path.split(".")
    if not all(parts):
        problems.append(f"{path!r} has an empty segment")
    if len(parts) > MAX_PATH_SEGMENTS:
        problems.append(f"more than {MAX_PATH_SEGMENTS} segments")
    return problems


def _write_path_problems(path, root, call_type):
    problems = path_problems(path)
    if problems or root is None:
        return problems
    parts = path.split(".")
    if parts[0] != root:
        return [f"{path!r} is outside {root}: {call_type} rules change only {root}.*"]
    if len(parts) < 2:
        return [f"must name a key under {root} (e.g. {root}.plan)"]
    return []


def _is_json(value) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
