"""Rules to and from a file (`manage.py transformations export | import`): the document, and what
importing a file would change. Pure: no Django, no ORM; the command reads and writes the database.

The document is {"format": 1, "rules": [spec, ...]}, the rules in position order, each spec as
rules.validate takes it except that `source` is the source's *name* (null: any source), so that
the file moves between installations. `id` and `revision` are written for information and for
matching; positions are not written: they follow the file's order.

Matching a file's rule to a stored rule, in two passes so an id match is never taken by a name:

1. by `id`, when the file gives one and the stored rule with that id has the same call_type and
   the same name. An id alone is not trusted: another installation's rule 7 is another rule;
2. else by name and call_type, when the file's name is not empty: the first stored rule, in
   position order, with exactly that name and call_type that no file rule has matched yet;
3. else the file's rule is added.

So a rule renamed (or given another call type) in the file is added as a new rule, and with
--replace the old one is removed; a rule without a name is matched by its id only. A matched rule
whose fields all equal the file's is unchanged: not saved, no new revision, no admin log entry.

Order: the file's rules take positions 1..n in the file's order; stored rules not in the file
(kept without --replace) follow them in their own order. Positions are renumbered only when that
order differs from the stored one or a rule is added.
"""

import json
from dataclasses import dataclass

FORMAT = 1
# What an import compares (and writes) besides the position; id and revision are the store's.
FIELDS = ("name", "enabled", "source", "call_type", "event", "condition", "operations")
EXPORTED = ("id", "revision", *FIELDS)


class Unreadable(ValueError):
    """A file that is not a rules document at all."""


@dataclass(frozen=True)
class Entry:
    """One rule of an import's plan. `spec` is the file's (source as an id) or, for a stored rule
    not in the file, the stored one; `stored` the stored spec it matched (with "position")."""

    kind: str  # added | changed | unchanged | removed | kept
    spec: dict
    stored: dict | None = None
    position: int | None = None  # where it ends up; None when removed
    fields: tuple[str, ...] = ()  # the fields that change, "position" included

    @property
    def content_changed(self):
        return self.kind == "added" or any(name != "position" for name in self.fields)

    @property
    def moved(self):
        return "position" in self.fields


# -- the document ----------------------------------------------------------------------------------


def export_document(specs, source_names):
    """The document of stored `specs` (in position order); `source_names`: {source id (text): name}."""
    rules = []
    for spec in specs:
        source = spec.get("source")
        rules.append({key: spec.get(key) for key in EXPORTED} | {"source": source_names.get(source, source)})
    return {"format": FORMAT, "rules": rules}


def dumps(document):
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def read(text):
    """The rule specs of a document's text (not yet validated); Unreadable when it is no document."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise Unreadable(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise Unreadable(f'not a rules document: expected {{"format": {FORMAT}, "rules": [...]}}')
    if not isinstance(document.get("rules"), list):
        raise Unreadable('"rules" must be a list')
    unknown = sorted(set(document) - {"format", "rules"}, key=str)
    if unknown:
        raise Unreadable(f"unknown keys: {', '.join(map(str, unknown))}")
    return document["rules"]


def resolve_source(spec, source_ids):
    """(`spec` with its source name replaced by the source's id as text, problems);
    `source_ids`: {name: [ids]}. A spec that is not an object is left to rules.validate."""
    if not isinstance(spec, dict) or spec.get("source") is None:
        return spec, []
    name = spec["source"]
    if not isinstance(name, str):
        return {**spec, "source": None}, ["source: must be null (any source) or the name of a source"]
    ids = source_ids.get(name, [])
    if len(ids) != 1:
        why = f"no source is named {name!r}" if not ids else f"{len(ids)} sources are named {name!r}; rename one"
        return {**spec, "source": None}, [f"source: {why}"]
    return {**spec, "source": str(ids[0])}, []


def normalize(spec):
    """A valid spec with the defaults filled in, as the store keeps it."""
    return {
        "id": spec.get("id"),
        "revision": spec.get("revision"),
        "name": spec.get("name") or "",
        "enabled": spec.get("enabled", True),
        "source": spec.get("source"),
        "call_type": spec["call_type"],
        "event": spec.get("event") or None,
        "condition": spec.get("condition"),
        "operations": spec["operations"],
    }


def model_fields(spec):
    """The Rule model's fields for a normalized spec."""
    source = spec["source"]
    return {
        "name": spec["name"],
        "enabled": spec["enabled"],
        "source_id": None if source is None else int(source),
        "call_type": spec["call_type"],
        "event": spec["event"] or "",
        "condition": spec["condition"],
        "operations": spec["operations"],
    }


# -- the plan --------------------------------------------------------------------------------------


def plan(file_specs, stored_specs, replace=False):
    """The entries of importing normalized `file_specs` (in the file's order) over `stored_specs`
    (rule.spec() with "position", in position order): the file's rules in order, then the stored
    rules it leaves out (removed with `replace`, else kept)."""
    matched = match(file_specs, stored_specs)
    taken = {id(stored) for stored in matched if stored is not None}
    left = [stored for stored in stored_specs if id(stored) not in taken]
    staying = list(zip(file_specs, matched, strict=True)) + ([] if replace else [(s, s) for s in left])
    order = [stored for _, stored in staying]
    stored_order = [stored["id"] for stored in stored_specs if not replace or id(stored) in taken]
    renumber = any(stored is None for stored in order) or [stored["id"] for stored in order] != stored_order
    entries = []
    for position, (spec, stored) in enumerate(staying, start=1):
        moved = ("position",) if renumber and stored is not None and stored["position"] != position else ()
        at = position if renumber or stored is None else stored["position"]
        if stored is None:
            entries.append(Entry("added", spec, None, at))
        elif spec is stored:
            entries.append(Entry("kept", spec, stored, at, moved))
        else:
            fields = tuple(name for name in FIELDS if canonical(spec[name]) != canonical(stored[name])) + moved
            entries.append(Entry("changed" if fields else "unchanged", spec, stored, at, fields))
    if replace:
        entries += [Entry("removed", stored, stored) for stored in left]
    return entries


def match(file_specs, stored_specs):
    """For each file spec, the stored spec it matches, or None (see the module's docstring)."""
    by_id = {stored["id"]: stored for stored in stored_specs}
    found, taken = [None] * len(file_specs), set()
    for index, spec in enumerate(file_specs):
        stored = by_id.get(spec.get("id"))
        if stored is not None and id(stored) not in taken and _same_identity(spec, stored):
            found[index] = stored
            taken.add(id(stored))
    for index, spec in enumerate(file_specs):
        if found[index] is not None or not spec["name"]:
            continue
        for stored in stored_specs:
            if id(stored) not in taken and _same_identity(spec, stored):
                found[index] = stored
                taken.add(id(stored))
                break
    return found


def _same_identity(spec, stored):
    return spec["call_type"] == stored["call_type"] and spec["name"] == (stored["name"] or "")


def canonical(value):
    """JSON text that tells two values apart exactly (1 from 1.0 and true), key order aside."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# -- telling it --------------------------------------------------------------------------------------


def summary(entries, replace=False):
    counts = {kind: sum(entry.kind == kind for entry in entries) for kind in ("added", "changed", "unchanged")}
    text = f"{counts['added']} added, {counts['changed']} changed, {counts['unchanged']} unchanged"
    if replace:
        return text + f", {sum(entry.kind == 'removed' for entry in entries)} removed"
    kept = sum(entry.kind == "kept" for entry in entries)
    return text + (f"; {kept} stored rules not in the file kept (--replace removes them)" if kept else "")


SIGNS = {"added": "+", "changed": "~", "unchanged": "=", "removed": "-", "kept": " "}


def describe(entry):
    """One line of the diff."""
    spec = entry.spec
    who = f"rule {entry.stored['id']}" if entry.stored else "new rule"
    event = f" {spec['event']!r}" if spec.get("event") else ""
    name = f" {spec['name']!r}" if spec.get("name") else ""
    line = f"{SIGNS[entry.kind]} {entry.kind:<9} {who}{name} ({spec['call_type']}{event})"
    if entry.position is not None:
        line += f" at {entry.position}"
    if entry.fields:
        line += ": " + ", ".join(entry.fields)
    return line
