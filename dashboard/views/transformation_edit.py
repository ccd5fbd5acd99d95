"""The transformation rule editor: add and edit for operators, read-only for viewers; the form
read into a rule spec, its problems shown, the save a new revision in the admin log."""

import json
import re

from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from dashboard.views.common import OPERATE, Page, can_operate
from forwarding import event_names
from forwarding.models import Call, Rule, RuleCallType, Source
from forwarding.transformations import preview, rules, store

RECENT = 20  # calls offered to preview on
HISTORY = 10  # admin log entries shown
MAX_DEPTH = 64  # nesting of a pasted payload or a rule's values: deeper is refused, not recursed into
NAME_MAX = Rule._meta.get_field("name").max_length
ROW_ID = re.compile(r"[0-9]{1,18}")
TEXT_FIELDS = ("name", "source", "call_type", "event", "condition_kind", "condition_path", "condition_value")
CONDITIONS = [("none", "always"), ("equals", "equals"), ("exists", "exists"), ("absent", "is absent")]
CHANGES = [
    ("name", "name"),
    ("enabled", "enabled"),
    ("source", "source"),
    ("call_type", "call type"),
    ("event", "event name"),
    ("condition", "condition"),
    ("operations", "operations"),
]


def label(rule):
    return rule.name or rule.summary()


def plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def refuse_constant(constant):
    raise ValueError(f"{constant} is not JSON")


def lenient_json(text):
    """`text` as a JSON value when it is one, else the text itself (`pro` is the text "pro", `12` the number)."""
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        return text


def shown_json(value):
    """`value` as the editor shows it, so that lenient_json reads it back the same."""
    if isinstance(value, str) and lenient_json(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def too_deep(value, limit=MAX_DEPTH):
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def has_nul(value):
    """Whether a key or text in `value` holds a NUL character, which PostgreSQL's JSON refuses."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and "\0" in node:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


# -- the form ------------------------------------------------------------------------------------


def initial(rule, params):
    """The form's values for `rule`, or for a new rule (`?call_type=&event=&source=` prefill it)."""
    if rule is None:
        call_type = params.get("call_type", "")
        source = params.get("source", "")
        return {
            "name": "",
            "enabled": True,
            "source": source if ROW_ID.fullmatch(source) else "",
            "call_type": call_type if call_type in rules.CALL_TYPES else RuleCallType.TRACK,
            "event": params.get("event", "")[:255],
            "condition_kind": "none",
            "operations": "[]",
        }
    condition = rule.condition if isinstance(rule.condition, dict) else {}
    kind = "none" if not condition else "equals" if "equals" in condition else "exists"
    if kind == "exists" and condition.get("exists") is False:
        kind = "absent"
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "source": "" if rule.source_id is None else str(rule.source_id),
        "call_type": rule.call_type,
        "event": rule.event,
        "condition_kind": kind,
        "condition_path": condition.get("path", ""),
        "condition_value": shown_json(condition["equals"]) if kind == "equals" else "",
        "operations": json.dumps(rule.operations, indent=2, ensure_ascii=False),
        "position": str(place(rule)),
        "revision": str(rule.revision),
    }


def place(rule):
    """The rule's place in the order the rules run (1 = first)."""
    before = Q(position__lt=rule.position) | Q(position=rule.position, pk__lt=rule.pk)
    return Rule.objects.filter(before).count() + 1


def read(post):
    """(spec, values as typed, problems) of a posted form."""
    typed = {name: post.get(name, "") for name in (*TEXT_FIELDS, "operations", "position", "revision")}
    typed["enabled"] = post.get("enabled") == "on"
    problems = []
    name = typed["name"].strip()
    if len(name) > NAME_MAX:
        problems.append(f"name: at most {NAME_MAX} characters")
    source = typed["source"].strip() or None
    if source is not None and not (ROW_ID.fullmatch(source) and Source.objects.filter(pk=int(source)).exists()):
        problems.append(f"source: {source!r} is no source")
    path, kind = typed["condition_path"].strip(), typed["condition_kind"] or "none"
    condition = {
        "none": None,
        "equals": {"path": path, "equals": lenient_json(typed["condition_value"])},
        "exists": {"path": path, "exists": True},
        "absent": {"path": path, "exists": False},
    }.get(kind)
    if kind not in ("none", "equals", "exists", "absent"):
        problems.append("condition: choose always, equals, exists or is absent")
    try:
        operations = json.loads(typed["operations"] or "[]", parse_constant=refuse_constant)
    except RecursionError:
        operations, problem = None, "operations: nested too deeply"
    except ValueError as error:
        operations, problem = None, f"operations: not JSON ({error})"
    spec = {
        "name": name,
        "enabled": typed["enabled"],
        "source": source,
        "call_type": typed["call_type"],
        "event": typed["event"].strip() or None,
        "condition": condition,
        "operations": operations,
    }
    if too_deep(spec):  # checked first: deeper values are not walked into
        return spec, typed, [*problems, f"the rule nests values more than {MAX_DEPTH} levels deep"]
    found = rules.validate(spec)
    if operations is None:  # already said why; the list's own problems would only repeat it
        found = [problem] + [line for line in found if not line.startswith("operations:")]
    problems += found
    if has_nul(spec):
        problems.append("the rule contains a NUL character, which no stored value can hold")
    position = typed["position"].strip()
    if position and not (ROW_ID.fullmatch(position) and 1 <= int(position) <= Rule.objects.count() + 1):
        problems.append(f"position: {position!r} is not a place from 1 to {Rule.objects.count() + 1}")
    return spec, typed, problems


def change_message(old, new):
    """What an edit changed, for the admin log ("Changed name, operations.")."""
    changed = [words for key, words in CHANGES if old.get(key) != new.get(key)]
    return f"Changed {', '.join(changed)}." if changed else ""


# -- the editor ----------------------------------------------------------------------------------


class Editor(Page):
    """`transformations/add/` (operators) and `transformations/<pk>/` (viewers read it; operators save)."""

    template_name = "dashboard/transformation_edit.html"

    def dispatch(self, request, *args, **kwargs):
        if kwargs.get("pk") is None or request.method == "POST":
            self.permission = OPERATE
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, pk=None):
        rule = None if pk is None else get_object_or_404(Rule.objects.select_related("source"), pk=pk)
        return self.page(request, rule, initial(rule, request.GET))

    def post(self, request, pk=None):
        rule = Rule() if pk is None else get_object_or_404(Rule.objects.select_related("source"), pk=pk)
        spec, typed, problems = read(request.POST)
        if rule.pk and typed["revision"] != str(rule.revision):
            problems.insert(0, stale(rule))
            typed["revision"] = str(rule.revision)  # saving again overwrites it, knowingly
            return self.page(request, rule, typed, problems, status=409)
        if problems:
            return self.page(request, rule, typed, problems, status=400)
        added, old = rule.pk is None, rule.spec()
        message = "Added." if added else change_message(old, spec)
        moved = typed["position"].strip() and int(typed["position"]) != (None if added else place(rule))
        if message:
            rule.name, rule.enabled, rule.call_type = spec["name"], spec["enabled"], spec["call_type"]
            rule.source_id = None if spec["source"] is None else int(spec["source"])
            rule.event, rule.condition, rule.operations = spec["event"] or "", spec["condition"], spec["operations"]
            try:
                store.save(rule, request.user, message)
            except store.Invalid as invalid:
                return self.page(request, rule, typed, invalid.problems, status=400)
        if moved:
            store.move(rule, int(typed["position"]), request.user)
        if message or moved:
            messages.success(request, f"{'Added' if added else 'Saved'} rule {rule.pk} (revision {rule.revision}).")
        else:
            messages.info(request, f"Nothing changed in rule {rule.pk}.")
        return HttpResponseRedirect(reverse("admin:transformation_edit", args=[rule.pk]))

    def page(self, request, rule, typed, problems=(), status=200):
        operator = can_operate(request.user)
        stored = rule is not None and rule.pk is not None
        self.title = f"Rule {rule.pk}: {label(rule)}" if stored else "Add a transformation rule"
        resend = None
        if stored and operator and rule.enabled:
            found, complete = preview.matching(rule)
            resend = {"count": len(found), "complete": complete, "limit": preview.SCAN_LIMIT}
        source = typed.get("source", "")
        return self.render(
            request,
            {
                "rule": rule if stored else None,
                "typed": typed,
                "problems": problems,
                "read_only": not operator,
                "sources": Source.objects.order_by("name", "pk"),
                "call_types": RuleCallType.choices,
                "conditions": CONDITIONS,
                "places": Rule.objects.count() + (0 if stored else 1),
                "recent": recent_calls(typed.get("call_type"), typed.get("event", ""), source),
                "resend": resend,
                "notices": preview.notices(rule.spec()) if stored else [],
                "history": history(rule) if stored else [],
            },
            status=status,
        )


def stale(rule):
    who = f" by {rule.updated_by}" if rule.updated_by else ""
    return (
        f"Rule {rule.pk} was changed{who} at {rule.updated_at:%Y-%m-%d %H:%M} UTC since this form was opened (it is "
        f"now revision {rule.revision}): nothing was saved. Save again to replace that revision with this form."
    )


def history(rule):
    kind = ContentType.objects.get_for_model(Rule)
    entries = LogEntry.objects.filter(content_type=kind, object_id=str(rule.pk)).select_related("user")
    return list(entries.order_by("-action_time", "-pk")[:HISTORY])


def recent_calls(call_type, event="", source=""):
    """The newest calls (with a payload) of `call_type`, named `event` when given, from `source` when given."""
    calls = Call.objects.filter(type=call_type).exclude(payload__isnull=True)
    if source and ROW_ID.fullmatch(source):
        calls = calls.filter(source_id=int(source))
    event = event.strip()
    if event and call_type == RuleCallType.TRACK:
        calls = calls.filter(delivery__event_key=event_names.key_of(event))
    elif event and call_type == RuleCallType.PAGE:
        calls = calls.filter(event__iexact=event)
    fields = ("pk", "received_at", "type", "event", "user_id", "anonymous_id", "group_id")
    return list(calls.order_by("-received_at", "-pk").values(*fields)[:RECENT])
