"""A call's detail: its delivery, its latest attempts, and the requests it maps to now."""

import json
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

from dashboard.queries import links
from forwarding.delivery import attributes
from forwarding.event_names import key_of
from forwarding.mapping import CONTACT_PLACEHOLDER, map_call, planned_requests
from forwarding.models import Attempt, Call, CallType, Delivery, EventName, Rule
from forwarding.transformations import store

ATTEMPTS_SHOWN = 20


@dataclass
class Planned:
    method: str
    path: str
    body: str  # pretty JSON, or ""


@dataclass
class CallDetail:
    call: Call
    delivery: Delivery | None
    attempts: list
    payload_json: str = ""
    registry: EventName | None = None
    forwarded_name: str = ""
    contact_id: str = ""
    companies: dict = field(default_factory=dict)
    planned: list = field(default_factory=list)
    mapping_warnings: list = field(default_factory=list)
    skip_reason: str = ""
    mapping_error: str = ""
    message: dict | None = None  # the payload after the rules in force
    payload_after_json: str = ""  # pretty, when a rule changed it
    rules: list = field(default_factory=list)  # the Rules in force that apply to it now
    rule_warnings: list = field(default_factory=list)


def call_with_attempts(pk):
    """(call, its delivery or None, its latest ATTEMPTS_SHOWN attempts with their exchanges), or
    None when there is no such call: the call detail's rows, for the page and the API."""
    call = Call.objects.select_related("source", "delivery").filter(pk=pk).first()
    if call is None:
        return None
    try:
        delivery = call.delivery
    except ObjectDoesNotExist:
        delivery = None
    attempts = []
    if delivery is not None:
        attempts = list(
            Attempt.objects.filter(delivery_id=pk)
            .order_by("-started_at", "-id")
            .prefetch_related("exchanges")[:ATTEMPTS_SHOWN]
        )
    return call, delivery, attempts


def call_detail(pk, workspace):
    """A call, its delivery, its latest attempts with their exchanges, and what it maps to now
    with the ids and data attributes cached for `workspace` (workspace.shown())."""
    found = call_with_attempts(pk)
    if found is None:
        return None
    detail = CallDetail(*found)
    call, delivery = detail.call, detail.delivery
    if call.payload is not None:
        detail.payload_json = pretty(call.payload)
        _transform(detail)
    if delivery is not None and delivery.event_key:
        detail.registry = EventName.objects.filter(key=delivery.event_key).first()
        if detail.registry is not None:
            detail.forwarded_name = _forwarded_name(detail)
    if call.payload is not None and not detail.skip_reason:
        _plan(detail, workspace)
    return detail


def _transform(detail):
    """The payload after the transformation rules in force, the rules that apply, and a drop."""
    call = detail.call
    applied = store.apply(call.payload, call.source_id)
    detail.message = applied.message
    detail.rule_warnings = list(applied.warnings)
    if applied.applied:
        by_id = Rule.objects.in_bulk([rule_id for rule_id, _ in applied.applied])
        detail.rules = [by_id[rule_id] for rule_id, _ in applied.applied if rule_id in by_id]
        if not applied.dropped:
            detail.payload_after_json = pretty(applied.message)
    if applied.dropped:
        detail.skip_reason = f"dropped by rule {applied.dropped_by}"


def _forwarded_name(detail):
    """The event name the call goes out under now: the registry's, or the one a rule gives it."""
    registry, message = detail.registry, detail.message or {}
    after = message.get("event") if detail.call.type == CallType.TRACK else None
    if not isinstance(after, str) or key_of(after) == registry.key:
        return registry.name
    target = EventName.objects.filter(key=key_of(after)).values_list("name", flat=True).first()
    return target or after.strip()


def _plan(detail, workspace):
    """The Intercom requests the call maps to with what the relay knows now (ids, renames, and the
    data attributes each custom attribute is written to)."""
    call, delivery = detail.call, detail.delivery
    user_id = (delivery.user_id if delivery else "") or call.user_id or None
    names = {}
    if detail.forwarded_name:
        names = {"event_name": detail.forwarded_name, "page_event_name": detail.forwarded_name}
    try:
        mapped = map_call(
            detail.message, user_id=user_id, **{"page_event_name": settings.INTERCOM_PAGE_EVENT_NAME, **names}
        )
    except Exception as exc:  # mapping is pure; a bug there must not hide the call
        detail.mapping_error = f"{exc.__class__.__name__}: {exc}"
        return
    detail.skip_reason = mapped.skip_reason
    detail.mapping_warnings = list(mapped.warnings)
    if mapped.skip_reason:
        return
    mapped = _with_attributes(mapped, workspace, detail.mapping_warnings)
    if mapped.user_id:
        detail.contact_id = links.contact_id(workspace, mapped.user_id)
    companies = [mapped.company] if mapped.company is not None else list(mapped.companies)
    group_ids = [company["company_id"] for company in companies] + list(mapped.detach)
    if group_ids:
        detail.companies = links.company_ids(workspace, group_ids)
    requests = planned_requests(
        mapped, contact_id=detail.contact_id or CONTACT_PLACEHOLDER, company_id=detail.companies
    )
    detail.planned = [Planned(method, path, "" if body is None else pretty(body)) for method, path, body in requests]


def _with_attributes(mapped, workspace, warnings):
    """`mapped` with the custom attributes of its contact and company bodies under the names they
    are written to now (attributes.preview: aliases, refused and ignored names), adding the
    preview's warnings. At most one query per model: the companies' names are previewed together."""
    changes = {}
    if mapped.contact is not None and mapped.contact.get("custom_attributes"):
        kept, notes = attributes.preview(workspace, "contact", mapped.contact["custom_attributes"])
        changes["contact"] = _with_custom(mapped.contact, kept)
        warnings += [note for note in notes if note not in warnings]
    bodies = [mapped.company] if mapped.company is not None else list(mapped.companies)
    names = {name: name for body in bodies for name in body.get("custom_attributes") or {}}
    if names:
        # Previewed with each name as its own value: {attribute written: trait name}.
        kept, notes = attributes.preview(workspace, "company", names)
        written_as = {name: attribute for attribute, name in kept.items()}
        warnings += [note for note in notes if note not in warnings]
        renamed = []
        for body in bodies:
            values = body.get("custom_attributes") or {}
            renamed.append(_with_custom(body, {written_as[k]: v for k, v in values.items() if k in written_as}))
        if mapped.company is not None:
            changes["company"] = renamed[0]
        else:
            changes["companies"] = tuple(renamed)
    return replace(mapped, **changes) if changes else mapped


def _with_custom(body, custom):
    """A copy of a request body with its custom_attributes replaced (left out when empty)."""
    body = {key: value for key, value in body.items() if key != "custom_attributes"}
    if custom:
        body["custom_attributes"] = custom
    return body


def pretty(value):
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
