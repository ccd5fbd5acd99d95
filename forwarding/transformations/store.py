"""The transformation rules in force (docs/delivery.md, "Transformations"): compiled once per process and
used until the rule set's version changes (one small row read per task), saved with a new
revision and the version bumped in the same transaction, every change in the admin log."""

import secrets
from dataclasses import dataclass

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from forwarding.models import Rule, RuleSet
from forwarding.transformations import rules

_cache = {"version": None, "rules": []}


class Invalid(ValueError):
    """A rule spec with problems; `problems` lists them for the operator."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


def version():
    return RuleSet.objects.filter(pk=1).values_list("version", flat=True).first() or 0


def current():
    """The enabled rules in order, compiled; re-read only when the rule set's version changed."""
    found = version()
    if found != _cache["version"]:
        specs = [rule.spec() for rule in Rule.objects.filter(enabled=True).order_by("position", "pk")]
        _cache.update(version=found, rules=rules.compile_rules(specs))
    return _cache["rules"]


def apply(message, source_id, compiled=None):
    """`message` after the rules in force (or `compiled`); an Applied whose message the caller must
    not change (it is the stored payload itself when no rule matched)."""
    return rules.apply(current() if compiled is None else compiled, message, source_id)


def bump():
    """A new version: every worker reads the rules again before its next task. Random, not a
    counter: a restored or re-created row must never give a version some worker has cached."""
    version = secrets.randbits(62) + 1
    if not RuleSet.objects.filter(pk=1).update(version=version):
        RuleSet.objects.update_or_create(pk=1, defaults={"version": version})


def check(spec):
    """Raise Invalid with every problem of a rule spec."""
    problems = rules.validate(spec)
    if problems:
        raise Invalid(problems)


@transaction.atomic
def save(rule, user=None, message=""):
    """Validate and store `rule` (new or changed): a new revision, the version bumped, the admin
    log written with `user` and `message` (what changed)."""
    added = rule.pk is None
    if added and not rule.position:
        rule.position = (Rule.objects.aggregate(last=Max("position"))["last"] or 0) + 1
    check(rule.spec())
    now = timezone.now()
    if not added:
        rule.revision = (Rule.objects.filter(pk=rule.pk).values_list("revision", flat=True).first() or 0) + 1
    rule.updated_at = now
    rule.updated_by = getattr(user, "username", "") or rule.updated_by
    rule.save()
    bump()
    log(user, rule, ADDITION if added else CHANGE, message or ("Added." if added else "Changed."))
    return rule


@transaction.atomic
def delete(rule, user=None):
    """Remove `rule`, with the version bumped and the admin log written."""
    log(user, rule, DELETION, "Deleted.")
    rule.delete()
    bump()


@transaction.atomic
def move(rule, position, user=None):
    """Put `rule` at `position` (1 = first) and number the others after it in order."""
    ordered = [r for r in Rule.objects.order_by("position", "pk") if r.pk != rule.pk]
    index = max(0, min(position - 1, len(ordered)))
    ordered.insert(index, rule)
    for number, each in enumerate(ordered, start=1):
        if each.position != number:
            Rule.objects.filter(pk=each.pk).update(position=number)
    rule.position = index + 1
    bump()
    log(user, rule, CHANGE, f"Moved to position {rule.position}.")


def log(user, rule, flag, message):
    """The admin log's entry for a rule change, when a person (or `--as` user) made it."""
    if user is not None and getattr(user, "pk", None):
        LogEntry.objects.log_actions(user.pk, [rule], flag, change_message=message, single_object=True)


@dataclass(frozen=True)
class Rename:
    """An unconditional rename of one event name: what the event-names page shows and edits."""

    rule: Rule
    to: str


def renames():
    """{event key: Rename} for enabled track rules of any source and no condition whose only
    operation renames the event: the event-names page's renames."""
    found = {}
    for rule in Rule.objects.filter(enabled=True, call_type="track", source__isnull=True, condition__isnull=True):
        operations = rule.operations if isinstance(rule.operations, list) else []
        if rule.event and len(operations) == 1 and operations[0].get("op") == "rename_event":
            found.setdefault(rule.event.strip().lower(), Rename(rule, operations[0]["to"]))
    return found
