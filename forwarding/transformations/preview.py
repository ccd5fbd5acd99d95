"""What a draft rule would do to one call (the payload and the Intercom requests before and after it,
its warnings and problems), and the held and failed deliveries a stored rule matches. A preview
reads the database (the rules in force, the event-name registry) but sends and writes nothing.

Decisions where the design is silent:

- The draft runs in its place: after the enabled rules in force that come before it (its stored
  position, or after every rule for a new one), without its own stored version. Rules after it are
  left out of both sides, so the difference between "before" and "after" is the draft's alone.
- A disabled draft is previewed as if enabled (with a warning saying that it changes nothing yet).
- A pasted payload comes from the draft's own source (any source: none), so a source filter matches it.
- The requests use placeholders for Intercom's ids ({contact_id}, ...), as the call page does when
  none is cached; a track event goes out under the registry's spelling of its name, as at delivery.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from forwarding import event_names
from forwarding.delivery import queue
from forwarding.mapping import map_call, planned_requests
from forwarding.models import Delivery, EventName, NameStatus, Rule, State, Trigger
from forwarding.transformations import rules
from forwarding.transformations.operations import MISSING, lookup, show

# Held and failed deliveries looked at, at most, to find the ones a rule matches.
SCAN_LIMIT = 10_000


@dataclass
class Preview:
    """One call before and after a draft rule, and what the operator should know about the draft."""

    before: dict  # the call as the draft gets it: after the rules in force before it
    after: dict | None  # None when the draft has problems (it cannot run)
    requests_before: list = field(default_factory=list)  # [(method, path, body)]
    requests_after: list = field(default_factory=list)
    skip_before: str = ""  # why nothing would be sent, or ""
    skip_after: str = ""
    warnings: list = field(default_factory=list)  # the draft's, for this call
    problems: list = field(default_factory=list)  # the draft's own, whatever the call
    dropped: bool = False  # the draft drops this call
    matched: bool = False
    reason: str = ""  # why the draft does not run on this call, or ""
    earlier: list = field(default_factory=list)  # ids of the rules in force that ran before it
    changes: list = field(default_factory=list)  # "path: what changed", from before to after

    def as_json(self):
        """The preview as the editor's script reads it."""
        return {
            "before": self.before,
            "after": self.after,
            "requests_before": [request_json(r) for r in self.requests_before],
            "requests_after": [request_json(r) for r in self.requests_after],
            "skip_before": self.skip_before,
            "skip_after": self.skip_after,
            "warnings": self.warnings,
            "problems": self.problems,
            "dropped": self.dropped,
            "matched": self.matched,
            "reason": self.reason,
            "earlier": self.earlier,
            "changes": self.changes,
        }


def request_json(request):
    method, path, body = request
    return {"method": method, "path": path, "body": body}


def preview(spec, message, source_id) -> Preview:
    """`message` (a call from source `source_id`) before and after the draft rule `spec`."""
    invalid = rules.validate(spec)
    problems = invalid or notices(spec)
    ran = rules.apply(earlier_rules(_own_id(spec)), message, source_id)
    before = ran.message
    result = Preview(before=before, after=None, problems=problems, earlier=[i for i, _ in ran.applied])
    if ran.dropped:
        result.skip_before = result.skip_after = f"dropped by rule {ran.dropped_by}"
        result.reason = f"rule {ran.dropped_by}, before this one, drops the call"
        result.after = before
        return result
    result.requests_before, result.skip_before = requests_for(before)
    if invalid:
        result.skip_after = "the rule has problems"
        return result
    if spec.get("enabled") is False:
        result.warnings.append("the rule is disabled: it changes nothing until it is enabled")
    draft = dict(spec, enabled=True)
    result.matched = rules.matches(draft, before, source_id)
    if not result.matched:
        result.reason = mismatch(draft, before, source_id)
        result.after = before
        result.requests_after, result.skip_after = result.requests_before, result.skip_before
        return result
    applied = rules.apply([draft], before, source_id)
    result.after, result.dropped = applied.message, applied.dropped
    result.warnings += list(applied.warnings)
    result.changes = changes(before, applied.message)
    if applied.dropped:
        result.skip_after = "dropped by this rule"
    else:
        result.requests_after, result.skip_after = requests_for(applied.message)
    return result


def notices(spec):
    """What the operator should know before saving a valid draft: it renames calls to a new name
    while the event-name cap is full, or to an archived one."""
    problems, full = [], None
    for op in spec.get("operations", ()):
        if op.get("op") != "rename_event":
            continue
        to = op["to"].strip()
        entry = EventName.objects.filter(key=event_names.key_of(to)).first()
        if entry is not None and entry.status == NameStatus.ARCHIVED:
            problems.append(f"{to!r} is archived: calls renamed to {to} will be suppressed")
        elif entry is None or entry.slot_used_at is None:
            full = event_names.usage().full if full is None else full
            if full:
                problems.append(f"the cap is full: calls renamed to {to} will be held")
    return problems


def _own_id(spec):
    own = spec.get("id") if isinstance(spec, dict) else None
    return own if type(own) is int else None


def earlier_rules(rule_id=None):
    """The enabled rules in force before rule `rule_id` (every one for a new rule), compiled in order."""
    rows = Rule.objects.filter(enabled=True).order_by("position", "pk")
    if rule_id is not None:
        own = Rule.objects.filter(pk=rule_id).values_list("position", flat=True).first()
        rows = rows.exclude(pk=rule_id)
        if own is not None:
            rows = rows.filter(Q(position__lt=own) | Q(position=own, pk__lt=rule_id))
    return rules.compile_rules(rule.spec() for rule in rows)


def requests_for(message):
    """([(method, path, body)], skip reason) of the Intercom requests `message` maps to."""
    names = {}
    event = message.get("event") if message.get("type") == "track" else None
    if isinstance(event, str) and event.strip():
        registered = EventName.objects.filter(key=event_names.key_of(event)).values_list("name", flat=True).first()
        names["event_name"] = registered or event.strip()
    try:
        mapped = map_call(message, page_event_name=settings.INTERCOM_PAGE_EVENT_NAME, **names)
    except Exception as exc:  # mapping is pure; a bug there must not hide the rest of the preview
        return [], f"mapping failed: {exc.__class__.__name__}: {exc}"
    return planned_requests(mapped), mapped.skip_reason


def mismatch(spec, message, source_id):
    """Why the (valid) rule `spec` does not match `message`, in words."""
    kind, wanted = message.get("type"), spec.get("call_type")
    if kind != wanted:
        return f"it is a {kind or 'untyped'} call; the rule matches {wanted} calls"
    source = spec.get("source")
    if source is not None and str(source_id) != str(source):
        return f"the call comes from another source than source {source}"
    if not rules.matches(dict(spec, condition=None), message, source_id):
        name = message.get("name" if wanted == "page" else "event")
        what = "page name" if wanted == "page" else "event name"
        return f"its {what} {show(name)} is not {spec.get('event')!r}"
    condition = spec["condition"]
    if "exists" in condition:
        return f"{condition['path']} is {'absent' if condition['exists'] else 'present'}"
    found = lookup(message, tuple(condition["path"].split(".")))
    value = "absent" if found is MISSING else show(found)
    return f"{condition['path']} is {value}, not {show(condition['equals'])}"


def changes(before, after, prefix=""):
    """What differs from `before` to `after`, one "path: what" line per key, objects walked."""
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        path = f"{prefix}{key}"
        old, new = before.get(key, MISSING), after.get(key, MISSING)
        if new is MISSING:
            lines.append(f"{path}: removed (was {show(old)})")
        elif old is MISSING:
            lines.append(f"{path}: added {show(new)}")
        elif isinstance(old, dict) and isinstance(new, dict):
            lines += changes(old, new, f"{path}.")
        elif not rules.same_json(old, new):
            lines.append(f"{path}: {show(old)} -> {show(new)}")
    return lines


# -- the stored calls a rule matches -------------------------------------------------------------


def matching(rule, limit=SCAN_LIMIT):
    """(pks of the held and failed deliveries whose call `rule` matches, in order received; whether
    every candidate was looked at). The database narrows them down; the rule decides in Python, on
    the payload after the enabled rules before it, as delivery would."""
    spec = dict(rule.spec(), enabled=True)
    candidates = Delivery.objects.filter(state__in=[State.HELD, State.FAILED], call__type=rule.call_type).exclude(
        call__payload__isnull=True
    )
    if rule.source_id is not None:
        candidates = candidates.filter(call__source_id=rule.source_id)
    event = rule.event.strip()
    # The registry's key is lower-cased and the rule's filter case-folded: narrowed only where they agree.
    if event and rule.call_type == "track" and event_names.key_of(event) == event.casefold():
        candidates = candidates.filter(event_key=event_names.key_of(event))
    rows = candidates.order_by("created_at", "pk").values_list("pk", "call__payload", "call__source_id")
    earlier = earlier_rules(rule.pk)
    found, seen = [], 0
    for pk, payload, source_id in rows[: limit + 1].iterator(chunk_size=500):
        seen += 1
        if seen > limit:
            return found, False
        ran = rules.apply(earlier, payload, source_id)
        if not ran.dropped and rules.matches(spec, ran.message, source_id):
            found.append(pk)
    return found, True


def matching_deliveries(rule, limit=SCAN_LIMIT):
    """The held and failed deliveries whose call `rule` matches (among the first `limit` candidates)."""
    return Delivery.objects.filter(pk__in=matching(rule, limit)[0])


def resend_matching(rule, limit=SCAN_LIMIT):
    """Try the held and failed deliveries `rule` matches again now, in order received, as an
    operator's resend; how many were reopened."""
    return queue.reopen(matching(rule, limit)[0], Trigger.MANUAL)
