"""The transformations page (README "Transformations"): the rules grouped by what they match, in the
order they run, with the operators' enable, disable, move, delete and resend; and what the editor's
script asks (the preview of a draft rule, the recent calls to run it on). The rules' own verbs are
forwarding.transformations.store's; the editor is transformation_edit."""

import json

from django.contrib import messages
from django.http import HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from dashboard.views import transformation_edit as edit
from dashboard.views.common import Action, Page, audit, safe_next
from forwarding.models import Call, Rule
from forwarding.transformations import preview, rules, store

CALL_TYPE_ORDER = {name: index for index, name in enumerate(rules.CALL_TYPES)}


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        path("transformations/", page(Transformations), name="transformations"),
        path("transformations/add/", page(edit.Editor), name="transformation_add"),
        path("transformations/preview/", page(PreviewCall), name="transformation_preview"),
        path("transformations/calls/", page(RecentCalls), name="transformation_calls"),
        path("transformations/<relay_id:pk>/", page(edit.Editor), name="transformation_edit"),
        path("transformations/<relay_id:pk>/toggle/", page(Toggle), name="transformation_toggle"),
        path("transformations/<relay_id:pk>/move/", page(Move), name="transformation_move"),
        path("transformations/<relay_id:pk>/delete/", page(Delete), name="transformation_delete"),
        path("transformations/<relay_id:pk>/resend/", page(Resend), name="transformation_resend"),
    ]


# -- what a rule does, in words ------------------------------------------------------------------


def quoted(value):
    return json.dumps(value, ensure_ascii=False)


def condition_words(condition):
    """The rule's condition as a phrase, or ""."""
    if not isinstance(condition, dict) or "path" not in condition:
        return ""
    if "exists" in condition:
        return f"{condition['path']} {'exists' if condition['exists'] else 'is absent'}"
    return f"{condition['path']} = {quoted(condition.get('equals'))}"


def operation_words(op):
    """One operation as a phrase an operator reads."""
    if not isinstance(op, dict):
        return quoted(op)
    name, get = op.get("op"), op.get
    phrases = {
        "rename_event": lambda: f"rename the event to {quoted(get('to'))}",
        "rename_property": lambda: f"rename {get('from')} to {get('to')}",
        "change_type": lambda: f"make {get('path')} {'true/false' if get('to') == 'boolean' else get('to')}",
        "change_case": lambda: f"{get('to')}-case {get('path')}",
        "delete_property": lambda: f"delete {get('path')}",
        "copy_field": lambda: f"copy {get('from')} to {get('to')}",
        "set_constant": lambda: f"set {get('path')} to {quoted(get('value'))}",
        "drop": lambda: "drop the call",
    }
    return phrases[name]() if name in phrases else quoted(op)


def operations_words(operations):
    return [operation_words(op) for op in operations] if isinstance(operations, list) else [quoted(operations)]


def group_key(rule):
    """Rules matching the same source, call type and event name share a group (names ignoring case)."""
    return (rule.source_id, rule.call_type, rule.event.strip().casefold())


def group_label(rule):
    source = f"source {rule.source.name}" if rule.source_id else "any source"
    if rule.call_type in ("track", "page"):
        what = "event" if rule.call_type == "track" else "page"
        event = f"{what} “{rule.event.strip()}”" if rule.event.strip() else f"any {what}"
    else:
        event = ""
    return " · ".join(part for part in (source, rule.call_type, event) if part)


def grouped(ordered):
    """[{label, rules}] of `ordered` (rules in the order they run): any source first, then by
    source name, call type and event name; each group's rules in the order they run."""
    groups = {}
    for rule in ordered:
        groups.setdefault(group_key(rule), []).append(rule)
    for members in groups.values():
        for before, rule, after in zip([None, *members[:-1]], members, [*members[1:], None], strict=True):
            rule.up, rule.down = before, after
            rule.matches_words = condition_words(rule.condition)
            rule.operation_words = operations_words(rule.operations)
    order = sorted(
        groups.values(),
        key=lambda members: (
            members[0].source_id is not None,
            members[0].source.name.casefold() if members[0].source_id else "",
            CALL_TYPE_ORDER.get(members[0].call_type, 9),
            group_key(members[0])[2],
        ),
    )
    return [{"label": group_label(members[0]), "rules": members} for members in order]


# -- the page ------------------------------------------------------------------------------------


class Transformations(Page):
    template_name = "dashboard/transformations.html"
    title = "Transformations"

    def get(self, request):
        ordered = list(Rule.objects.select_related("source").order_by("position", "pk"))
        return self.render(
            request,
            {
                "groups": grouped(ordered),
                "count": len(ordered),
                "enabled_count": sum(rule.enabled for rule in ordered),
                "next": request.get_full_path(),
            },
        )


# -- what the editor's script asks ---------------------------------------------------------------


def problem(status, error):
    return JsonResponse({"error": error}, status=status)


class RecentCalls(Page):
    """GET `?call_type=&event=&source=`: the calls the editor offers to preview on, as JSON."""

    def get(self, request):
        params = request.GET
        found = edit.recent_calls(params.get("call_type", ""), params.get("event", ""), params.get("source", ""))
        for call in found:
            call["received_at"] = call["received_at"].strftime("%Y-%m-%d %H:%M:%S")
            call["url"] = reverse("admin:call_detail", args=[call["pk"]])
        return JsonResponse({"calls": found})


class PreviewCall(Page):
    """POST {"rule": spec, "call": id} or {"rule": spec, "payload": {...}}: the preview as JSON.
    Viewers may ask too: it reads, sends nothing and writes nothing."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            body = json.loads(request.body, parse_constant=edit.refuse_constant)
        except (ValueError, RecursionError):
            return problem(400, "The request is not JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("rule"), dict):
            return problem(400, 'Send {"rule": {...}, "call": id} or {"rule": {...}, "payload": {...}}.')
        spec, call_id, payload = body["rule"], body.get("call"), body.get("payload")
        if (call_id is None) == (payload is None):
            return problem(400, "Pick a call or paste a payload (one of the two).")
        if call_id is not None:
            if type(call_id) is str and edit.ROW_ID.fullmatch(call_id):
                call_id = int(call_id)
            if type(call_id) is not int or not 0 < call_id < 10**18:
                return problem(400, f"call: {json.dumps(call_id, ensure_ascii=False)[:40]} is not a call id.")
            call = Call.objects.filter(pk=call_id).only("pk", "source_id", "payload").first()
            if call is None:
                return problem(404, f"There is no call {call_id}.")
            if call.payload is None:
                return problem(400, f"Call {call_id} has no payload any more: it was removed.")
            message, source_id = call.payload, call.source_id
        elif not isinstance(payload, dict):
            return problem(400, "The pasted payload must be a JSON object (a call, with its type).")
        else:
            message, source_id = payload, spec.get("source")
        if edit.too_deep(message) or edit.too_deep(spec):
            return problem(400, f"The payload or the rule nests values more than {edit.MAX_DEPTH} levels deep.")
        return JsonResponse(preview.preview(spec, message, source_id).as_json())


# -- the operators' actions ----------------------------------------------------------------------


class RuleAction(Action):
    """A POST on one rule by an operator (403 otherwise, before anything is read); the store writes
    the admin log. Then back to the page it came from."""

    def post(self, request, pk):
        rule = get_object_or_404(Rule.objects.select_related("source"), pk=pk)
        response = self.act(request, rule)
        return response or HttpResponseRedirect(safe_next(request, reverse("admin:transformations")))

    def act(self, request, rule):
        raise NotImplementedError


class Toggle(RuleAction):
    """Enable or disable the rule (a new revision)."""

    def act(self, request, rule):
        rule.enabled = not rule.enabled
        done = "Enabled" if rule.enabled else "Disabled"
        try:
            store.save(rule, request.user, f"{done}.")
        except store.Invalid as invalid:
            messages.error(request, f"Rule {rule.pk} not changed: {'; '.join(invalid.problems)}.")
            return None
        messages.success(request, f"{done} rule {rule.pk} ({edit.label(rule)}).")
        return None


class Move(RuleAction):
    """Run the rule before the one above it in its group (up) or after the one below it (down)."""

    def act(self, request, rule):
        direction = request.POST.get("direction")
        if direction not in ("up", "down"):
            return HttpResponseBadRequest("direction must be up or down")
        others = [r for r in Rule.objects.order_by("position", "pk") if r.pk != rule.pk]
        mates = [index for index, other in enumerate(others) if group_key(other) == group_key(rule)]
        own = sum(1 for other in others if (other.position, other.pk) < (rule.position, rule.pk))
        if direction == "up":
            target = max((index for index in mates if index < own), default=None)
            position = None if target is None else target + 1  # just before that rule
        else:
            target = min((index for index in mates if index >= own), default=None)
            position = None if target is None else target + 2  # just after it
        if position is None:
            messages.info(
                request, f"Rule {rule.pk} is already the {'first' if direction == 'up' else 'last'} of its group."
            )
            return None
        store.move(rule, position, request.user)
        messages.success(request, f"Rule {rule.pk} now runs at position {rule.position} of {len(others) + 1}.")
        return None


class Delete(RuleAction):
    def act(self, request, rule):
        pk, name = rule.pk, edit.label(rule)
        store.delete(rule, request.user)
        messages.success(request, f"Deleted rule {pk} ({name}).")
        return HttpResponseRedirect(reverse("admin:transformations"))


class Resend(RuleAction):
    """Try the held and failed calls the rule matches again now, under the rules in force."""

    def act(self, request, rule):
        moved = preview.resend_matching(rule)
        done = f"Resent {edit.plural(moved, 'held or failed call')} rule {rule.pk} matches"
        if moved:
            audit(request, rule, f"{done}.")
        messages.success(request, f"{done}.")
        return HttpResponseRedirect(safe_next(request, reverse("admin:transformation_edit", args=[rule.pk])))
