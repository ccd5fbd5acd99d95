"""Custom data attributes (docs/fidelity.md): which attribute each trait is written to, created in
Intercom first when missing, and kept true against Intercom's answers.

Intercom stores a custom attribute's value only when the attribute exists, and its names are
unique across contacts and companies. So: a name another worker has just created is re-listed
and used; a name the other model holds is written under the alias `<model>_<name>`; a name is
refused only for a permanent reason (invalid name, the workspace's limit, a data type), and one
refused for the limit is tried again once the workspace has room."""

import re
import time

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from forwarding.delivery import policy
from forwarding.mapping import custom_attribute_types
from forwarding.models import DataAttribute, Outcome

Refusal = DataAttribute.Refusal
ALREADY = re.compile(r"already have '(?P<name>.*)' in your (?P<word>\w+) data", re.IGNORECASE)
MISSING = re.compile(r"Custom attribute '(?P<name>.*)' does not exist", re.IGNORECASE)
MODEL_OF_WORD = {
    "people": "contact",
    "person": "contact",
    "user": "contact",
    "contact": "contact",
    "company": "company",
}
LIMIT_RECHECK_SECONDS = 300
_limit_checked_at = {}  # {workspace: monotonic time a refusal for the limit was last re-checked}


class Refused(Exception):
    """Intercom did not answer the creation (network, 5xx, 429): the attempt stops with it."""

    def __init__(self, response):
        self.response = response


def alias_for(model, name):
    """The documented alias of a trait whose name the other model holds: `company_plan`."""
    return f"{model}_{name}"


def written(log, workspace, model, values, warnings, date_keys=frozenset()):
    """`values` ({trait: value}) keyed by the attribute each is written to, created first when
    missing, and the traits kept; what cannot be written is dropped, with a warning unless an
    operator ignored it. Raises Refused when Intercom did not answer a creation."""
    if not values:
        return {}, []
    rows = _rows(workspace, model, values)
    if any(_needs_creation(rows.get(name)) for name in values) or _limit_recheck_due(workspace, rows):
        refresh(log, workspace)
        rows = _rows(workspace, model, values)
    types = custom_attribute_types(values, date_keys)
    kept, traits, dropped = {}, [], []
    for name, value in values.items():
        row = rows.get(name)
        if row is None or _needs_creation(row):
            row = _create(log, workspace, model, name, types.get(name, "string"))
        if row.ignored:
            continue
        if row.alias:
            target = _alias_target(log, workspace, model, row, types.get(name, "string"))
            if target is not None:
                warnings.append(_alias_warning(model, name, row.alias))
                kept[row.alias] = value
                traits.append(name)
                continue
            reason = f"its alias {row.alias!r} was refused"
        elif row.usable:
            kept[name] = value
            traits.append(name)
            continue
        else:
            reason = row.reason or "Intercom refused to create it"
        dropped.append(name)
        warnings.append(f"custom attribute {name!r} dropped: {reason}")
    if dropped:
        DataAttribute.objects.filter(workspace=workspace, model=model, name__in=dropped).update(
            calls_dropped=F("calls_dropped") + 1
        )
    return kept, traits


def preview(workspace, model, values):
    """What `written` would send of `values` by what is known now, without asking Intercom:
    ({attribute: value}, warnings). Names not known yet are shown as they would be created."""
    rows = _rows(workspace, model, values)
    kept, warnings = {}, []
    for name, value in values.items():
        row = rows.get(name)
        if row is None or _needs_creation(row) or (row.usable and not row.alias):
            kept[name] = value
        elif row.ignored:
            continue
        elif row.alias:
            warnings.append(_alias_warning(model, name, row.alias))
            kept[row.alias] = value
        else:
            warnings.append(f"custom attribute {name!r} dropped: {row.reason or 'Intercom refused to create it'}")
    return kept, warnings


def count_written(workspace, model, names):
    """Note one more call that wrote each trait in `names` (after Intercom accepted it)."""
    if names:
        now = timezone.now()
        DataAttribute.objects.filter(workspace=workspace, model=model, name__in=list(names)).update(
            calls_written=F("calls_written") + 1,
            last_written_at=now,
            first_written_at=Coalesce(F("first_written_at"), now),
        )


def missing_in_answer(response):
    """The attribute a 400 "Custom attribute 'x' does not exist" names, or None."""
    if response.status != 400:
        return None
    match = MISSING.search(response.error_message or "")
    return match.group("name") if match else None


def forget(workspace, model, written_name):
    """Intercom no longer has `written_name` (archived, or another workspace's): create it again
    at the next write."""
    DataAttribute.objects.filter(
        Q(name=written_name, alias="") | Q(name=written_name, alias=written_name),
        workspace=workspace,
        model=model,
        ignored=False,
    ).update(usable=False, refusal=Refusal.NONE, reason="", updated_at=timezone.now())


def refresh(log, workspace):
    """Cache the workspace's custom data attributes (both models, one request); a refusal for the
    limit is lifted when the workspace has room again."""
    listed = log.intercom.list_data_attributes()
    if not listed.ok:
        raise Refused(listed)
    items = listed.body.get("data", []) if isinstance(listed.body, dict) else []
    custom = [i for i in items if i.get("custom") and i.get("name") and not i.get("archived")]
    now = timezone.now()
    for item in custom:
        row, created = DataAttribute.objects.get_or_create(
            workspace=workspace,
            model=item.get("model", ""),
            name=item["name"],
            defaults={"data_type": item.get("data_type", ""), "updated_at": now},
        )
        if not created and not row.alias and not row.usable:
            DataAttribute.objects.filter(pk=row.pk).update(
                usable=True, refusal=Refusal.NONE, reason="", data_type=item.get("data_type", ""), updated_at=now
            )
    if len(custom) < limit():
        DataAttribute.objects.filter(workspace=workspace, refusal=Refusal.LIMIT).update(
            refusal=Refusal.NONE, reason="", updated_at=now
        )
    _limit_checked_at[workspace] = time.monotonic()


def limit():
    """How many custom data attributes a workspace may have (INTERCOM_ATTRIBUTE_LIMIT)."""
    return settings.INTERCOM_ATTRIBUTE_LIMIT


def in_intercom(workspace):
    """The custom attributes the workspace holds, as last seen (rows of traits written under an
    alias, and refused names, are not attributes of Intercom's)."""
    return DataAttribute.objects.filter(workspace=workspace, usable=True, alias="")


# -- operator verbs (the attributes page) -----------------------------------------------------


def retry(row):
    """Try creating a refused attribute again at its next write."""
    DataAttribute.objects.filter(pk=row.pk).update(
        usable=False, refusal=Refusal.NONE, reason="", ignored=False, updated_at=timezone.now()
    )


def set_alias(row, alias):
    """Write the trait under `alias` from now on ("" writes it under its own name again)."""
    DataAttribute.objects.filter(pk=row.pk).update(
        alias="" if alias == row.name else alias,
        usable=False,
        refusal=Refusal.NONE,
        reason="",
        updated_at=timezone.now(),
    )


def ignore(row, ignored=True):
    """Drop the trait's values without a warning (or stop doing so)."""
    DataAttribute.objects.filter(pk=row.pk).update(ignored=ignored, updated_at=timezone.now())


# -- inside ------------------------------------------------------------------------------------


def _rows(workspace, model, values):
    return {r.name: r for r in DataAttribute.objects.filter(workspace=workspace, model=model, name__in=list(values))}


def _needs_creation(row):
    """No row, or a row that is neither usable nor refused (forgotten, retried, newly aliased)."""
    return row is None or (not row.usable and not row.refusal and not row.alias and not row.ignored)


def _limit_recheck_due(workspace, rows):
    if not any(row.refusal == Refusal.LIMIT for row in rows.values()):
        return False
    return time.monotonic() - _limit_checked_at.get(workspace, float("-inf")) > LIMIT_RECHECK_SECONDS


def _alias_target(log, workspace, model, row, data_type):
    """The usable attribute row of `row`'s alias (created when missing), or None."""
    target = DataAttribute.objects.filter(workspace=workspace, model=model, name=row.alias).first()
    if target is None or _needs_creation(target):
        target = _create(log, workspace, model, row.alias, data_type, aliasing=False)
    return target if target.usable and not target.alias else None


def _alias_warning(model, name, alias):
    """The warning of a trait written under an alias: the relay's, or an operator's."""
    why = _alias_reason(model) if alias == alias_for(model, name) else "an operator set this alias"
    return f"custom attribute {name!r} written as {alias!r}: {why}"


def _alias_reason(model):
    other = "companies" if model == "contact" else "contacts"
    return f"Intercom's attribute names are shared by contacts and companies, and {other} have it"


def _create(log, workspace, model, name, data_type, aliasing=True):
    """Create the attribute in Intercom (when allowed) and return its row, usable or refused."""
    if not settings.INTERCOM_CREATE_ATTRIBUTES:
        return DataAttribute(name=name, usable=False, reason="it does not exist in Intercom")
    created = log.intercom.create_data_attribute(model, name, data_type)
    if created.ok:
        return _save(workspace, model, name, usable=True, data_type=data_type)
    if policy.judge(created).outcome != Outcome.FAILED:
        raise Refused(created)
    message = created.error_message or ""
    taken = ALREADY.search(message)
    if taken:
        holder = MODEL_OF_WORD.get(taken.group("word").lower(), "")
        if holder == model:  # another worker (or sender) has just created it: use it
            refresh(log, workspace)
            row = DataAttribute.objects.filter(workspace=workspace, model=model, name=name).first()
            if row is not None and row.usable:
                return row
            return _save(workspace, model, name, refusal=Refusal.OTHER, reason=f"archived in Intercom: {message}")
        if aliasing:
            return _save(workspace, model, name, alias=alias_for(model, name), usable=True, data_type=data_type)
    return _save(workspace, model, name, refusal=_refusal(message), reason=message[:255] or created.error[:255])


def _refusal(message):
    lowered = message.lower()
    if "limit" in lowered:
        return Refusal.LIMIT
    if "alphanumeric" in lowered or "name" in lowered:
        return Refusal.INVALID_NAME
    if "data type" in lowered or "data_type" in lowered:
        return Refusal.TYPE_CONFLICT
    return Refusal.OTHER


def _save(workspace, model, name, usable=False, refusal=Refusal.NONE, reason="", alias=None, data_type=None):
    defaults = {"usable": usable, "refusal": refusal, "reason": reason, "updated_at": timezone.now()}
    if alias is not None:
        defaults["alias"] = alias
    if data_type is not None:
        defaults["data_type"] = data_type
    row, _ = DataAttribute.objects.update_or_create(workspace=workspace, model=model, name=name, defaults=defaults)
    return row
