"""Transformation rules (docs/delivery.md, "Transformations"): listed in the order they run, added,
changed and deleted through forwarding.transformations.store (a new revision each time, the
version bumped, the admin log written). A rule is the spec `manage.py transformations export`
writes; the store's own validation decides, and its problems are the 400's."""

import json

from django.db.models import Max
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from dashboard.api.base import ApiView, Conflict, Error, describe, invalid, names
from dashboard.api.paging import KEYSET_AFTER, LIMIT, keyset, page
from dashboard.api.serializers import RuleOut, rule_out
from dashboard.views.transformation_edit import MAX_DEPTH, change_message, has_nul, too_deep
from forwarding.models import Rule, Source
from forwarding.transformations import rules, store

FIELDS = ("name", "enabled", "source", "call_type", "event", "condition", "operations")
RulePage = page("RulePage", RuleOut)
OPERATION = {"type": "object", "required": ["op"], "properties": {"op": {"type": "string"}}}


def body_schema(required):
    return {
        "type": "object",
        "additionalProperties": False,
        **({"required": list(required)} if required else {}),
        "properties": {
            "name": {"type": "string", "nullable": True, "maxLength": 200},
            "enabled": {"type": "boolean"},
            "source": {"type": "string", "nullable": True, "pattern": "^[0-9]{1,18}$", "description": "A source id."},
            "call_type": {"type": "string", "enum": list(rules.CALL_TYPES)},
            "event": {"type": "string", "nullable": True, "maxLength": 255},
            "condition": {"type": "object", "nullable": True, "description": "{path, equals} or {path, exists}"},
            "operations": {"type": "array", "items": OPERATION},
            "position": {"type": "integer", "minimum": 1, "description": "Its place in the order (1 = first)."},
            "revision": {
                "type": "integer",
                "minimum": 1,
                "nullable": True,
                "description": "The revision this change was made on: 409 when the rule has changed since.",
            },
            "id": {"type": "integer", "nullable": True, "description": "Ignored (the URL names the rule)."},
        },
    }


def rule_of(pk):
    rule = Rule.objects.filter(pk=pk).first()
    if rule is None:
        raise exceptions.NotFound(f"There is no transformation rule {pk}.")
    return rule


def read_spec(data, base):
    """(spec, position or None) from a request body over `base` (the stored spec, or the defaults
    of a new rule); 400 with every problem."""
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object: a rule spec.")
    unknown = sorted(set(data) - set(FIELDS) - {"id", "revision", "position"}, key=str)
    problems = [f"{str(key)[:50]}: unknown key" for key in unknown]
    spec = {name: data.get(name, base.get(name)) for name in FIELDS}
    if spec["name"] is None:
        spec["name"] = ""
    if isinstance(spec["name"], str) and len(spec["name"]) > Rule._meta.get_field("name").max_length:
        problems.append("name: at most 200 characters")
    source = spec["source"]
    if type(source) is int:
        source = spec["source"] = str(source)
    if isinstance(source, str) and not (source.isascii() and source.isdigit() and len(source) <= 18):
        problems.append(f"source: {source[:30]!r} is no source id")
    elif isinstance(source, str) and not Source.objects.filter(pk=int(source)).exists():
        problems.append(f"source: there is no source {source}")
    for key in ("id", "revision"):
        value = data.get(key)
        if value is not None and (type(value) is not int or value < 1):
            problems.append(f"{key}: must be a positive whole number or null")
    position = data.get("position")
    if position is not None and (type(position) is not int or not 1 <= position <= Rule.objects.count() + 1):
        problems.append(f"position: must be a place from 1 to {Rule.objects.count() + 1}")
    if too_deep(spec):
        raise invalid(*problems, f"the rule nests values more than {MAX_DEPTH} levels deep")
    unnamed = unnamed_operations(spec["operations"])
    if unnamed:  # rules.validate looks such an op up by its value, and a list or an object cannot be
        raise invalid(*problems, *unnamed)
    problems += rules.validate(spec)
    if has_nul(spec) or not encodable(spec):
        problems.append("the rule holds a NUL character or invalid Unicode, which no stored value can hold")
    if problems:
        raise invalid(*problems)
    return spec, position


def unnamed_operations(operations):
    """Problems of operations whose "op" is not text."""
    if not isinstance(operations, list):
        return []
    return [
        f"operation {index}: op: must be the name of an operation (text)"
        for index, op in enumerate(operations, start=1)
        if isinstance(op, dict) and "op" in op and not isinstance(op["op"], str)
    ]


def encodable(value):
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def save(request, rule, spec, message):
    rule.name, rule.enabled, rule.call_type = spec["name"] or "", spec["enabled"], spec["call_type"]
    rule.source_id = None if spec["source"] is None else int(spec["source"])
    rule.event, rule.condition, rule.operations = spec["event"] or "", spec["condition"], spec["operations"]
    try:
        store.save(rule, request.user, f"{message.rstrip('.')} (through the API, token {request.auth.prefix}…).")
    except store.Invalid as error:
        raise invalid(*error.problems) from None


NEW = {"name": "", "enabled": True, "source": None, "event": None, "condition": None}


class Transformations(ApiView):
    query_names = names([KEYSET_AFTER, LIMIT])

    @describe(
        summary="The rules, in the order they run",
        parameters=[KEYSET_AFTER, LIMIT],
        responses=RulePage,
    )
    def get(self, request):
        found, cursor = keyset(Rule.objects.all(), ["position", "id"], request)
        return Response({"results": [rule_out(rule) for rule in found], "next": cursor})

    @describe(
        summary="Add a rule (last, or at `position`)",
        request={"application/json": body_schema(["call_type", "operations"])},
        responses={201: RuleOut},
    )
    def post(self, request):
        spec, position = read_spec(request.data, NEW)
        rule = Rule(position=(Rule.objects.aggregate(last=Max("position"))["last"] or 0) + 1)
        save(request, rule, spec, "Added.")
        if position is not None:
            store.move(rule, position, request.user)
        return Response(rule_out(rule), status=status.HTTP_201_CREATED)


STALE = OpenApiResponse(Error, "`revision` is not the rule's: it changed since (nothing was saved).")


class TransformationDetail(ApiView):
    @describe(summary="One rule", responses=RuleOut)
    def get(self, request, pk):
        return Response(rule_out(rule_of(pk)))

    @describe(
        summary="Replace a rule (a new revision)",
        request={"application/json": body_schema(["call_type", "operations"])},
        responses={200: RuleOut, 409: STALE},
    )
    def put(self, request, pk):
        return self.change(request, rule_of(pk), {**NEW, "call_type": None, "operations": None})

    @describe(
        summary="Change some of a rule's fields (a new revision)",
        request={"application/json": body_schema([])},
        responses={200: RuleOut, 409: STALE},
    )
    def patch(self, request, pk):
        rule = rule_of(pk)
        return self.change(request, rule, rule.spec())

    def change(self, request, rule, base):
        spec, position = read_spec(request.data, base)
        revision = request.data.get("revision")
        if revision is not None and revision != rule.revision:
            who = f" by {rule.updated_by}" if rule.updated_by else ""
            raise Conflict(
                f"Rule {rule.pk} was changed{who} since revision {revision} (it is now revision {rule.revision}): "
                "nothing was saved.",
                "stale",
            )
        message = change_message(rule.spec(), spec)
        if message:
            save(request, rule, spec, message)
        if position is not None:
            store.move(rule, position, request.user)
        rule.refresh_from_db()
        return Response(rule_out(rule))

    @describe(summary="Delete a rule", responses={204: None})
    def delete(self, request, pk):
        store.delete(rule_of(pk), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
