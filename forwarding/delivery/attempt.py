"""One try of a claimed delivery: what it will send (or the state it stops in without sending),
its requests, and its outcome, with what an outcome sets off (a user's calls released, their
identify sent again, a name refused by Intercom's cap)."""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from forwarding import event_names
from forwarding.delivery import outcomes, sequence
from forwarding.delivery.exchanges import AttemptLog
from forwarding.delivery.result import Result
from forwarding.mapping import DISABLED_REASON, Mapped, disabled_by_call, map_call
from forwarding.models import Call, CallType, ContactLink, Delivery, Outcome, State, Trigger
from forwarding.transformations import store

logger = logging.getLogger(__name__)

# Seconds before a user's identify is sent again for Intercom not knowing them, once it was.
REIDENTIFY_AFTER = 60.0
_reidentified = {}  # {(workspace, userId): monotonic time their identify was last sent again}
ROUTE_OUTCOMES = {State.HELD: Outcome.HELD, State.SUPPRESSED: Outcome.SUPPRESSED, State.FAILED: Outcome.FAILED}


@dataclass
class Plan:
    """A delivery that will send requests: what to send, for whom, under which event name."""

    delivery: Delivery
    mapped: Mapped
    user_id: str
    route: event_names.Route | None
    applied: object = None  # the transformation rules' Applied (rules, warnings)


def attempt(delivery):
    """One try of a claimed delivery; returns the delivery's changed fields."""
    planned = plan(delivery)
    if not isinstance(planned, Plan):
        return planned
    return send(planned, AttemptLog(delivery, delivery.trigger))


def plan(delivery, names=None, rules=None):
    """What the delivery will send, as a Plan; or, when it sends nothing (payload gone, skipped,
    dropped by a rule, anonymous, a held or archived name), its outcome written at once and its
    changed fields. The transformation rules in force apply first, to a copy of the payload; then
    the event name is routed (held or suppressed), so the call is mapped once. `names` are the
    task's registry entries by key (see `event_names.entries`) and `rules` the compiled rules in
    force (see `store.current`), when fetched."""
    call = delivery.call
    if call.payload is None:
        return outcomes.finish(delivery, None, Result(Outcome.FAILED, error="payload expired", cause="expired"))
    if disabled_by_call(call.payload):  # before routing: a call never sent takes no slot
        return outcomes.finish(delivery, None, Result(Outcome.SKIPPED, error=DISABLED_REASON, cause="skipped"))
    applied = store.apply(call.payload, call.source_id, rules)
    if applied.dropped:  # before routing too: a dropped call takes no slot
        result = Result(Outcome.SKIPPED, error=f"dropped by rule {applied.dropped_by}", cause="dropped")
        result.warnings += applied.warnings
        return outcomes.finish(delivery, None, result)
    message = applied.message
    user_id = attribute(delivery, call)
    route = None
    if delivery.event_key and user_id:  # only a call that will be sent takes a slot
        forwarded = message.get("event") if call.type == CallType.TRACK else None
        forced = delivery.trigger == Trigger.MANUAL
        route = event_names.route(delivery.event_key, forwarded if isinstance(forwarded, str) else None, forced, names)
        if route.state:
            result = Result(ROUTE_OUTCOMES[route.state], error=route.reason, cause=f"name_{route.state}")
            return outcomes.finish(delivery, None, result)
    page_name = route.name if route else settings.INTERCOM_PAGE_EVENT_NAME
    mapped = map_call(
        message, user_id=user_id or None, event_name=route.name if route else None, page_event_name=page_name
    )
    if mapped.skip_reason:
        return outcomes.finish(delivery, None, Result(Outcome.SKIPPED, error=mapped.skip_reason, cause="skipped"))
    if not user_id and mapped.company is None:  # an anonymous group creates its company at once
        reason = "anonymous call: waiting for an identify with this anonymousId"
        return outcomes.finish(delivery, None, Result(Outcome.WAITING, error=reason, cause="anonymous"))
    return Plan(delivery, mapped, user_id, route, applied)


def send(planned, log, buffer=None):
    """Send a Plan's requests through `log` and write the outcome: a delivered one into the
    task's `buffer` when there is one (written with the task's others), any other at once."""
    delivery, user_id, route = planned.delivery, planned.user_id, planned.route
    try:
        result = sequence.send(log, planned.mapped, user_id)
    except Exception as exc:  # a bug: recorded as an outcome and retried on the schedule
        logger.exception("delivery %s failed with an exception", delivery.pk)
        result = Result(Outcome.ERROR, error=f"{exc.__class__.__name__}: {exc}"[:500], cause="relay_error")
    if route is not None and route.warning:
        result.warnings.append(route.warning)
    if planned.applied is not None and planned.applied.applied:
        result.rules = [list(rule) for rule in planned.applied.applied]
        result.warnings[:0] = planned.applied.warnings
    if buffer is not None and result.outcome == Outcome.DELIVERED:
        changes = buffer.delivered(delivery, log, result)
    else:
        changes = outcomes.finish(delivery, log, result)
    if result.outcome == Outcome.WAITING:
        if ContactLink.objects.filter(workspace=log.workspace, user_id=user_id).exists():
            # The identify succeeded while this attempt was looking: its release missed this one.
            release_user(user_id)
        elif result.cause == "user_unknown":
            reidentify(log.workspace, user_id)
    if result.outcome == Outcome.HELD and route is not None:
        event_names.refused_by_intercom(delivery.event_key, route.name)
    if result.outcome == Outcome.DELIVERED and delivery.call.type == CallType.IDENTIFY:
        release_user(user_id, delivery.call.anonymous_id)
    return changes


def reidentify(workspace_id, user_id):
    """Intercom does not know a user the relay delivered an identify for (their contact deleted,
    another workspace): send their last delivered identify again, so that their waiting calls
    follow it; unless one of their identifies is on its way, or this was done for them a moment
    ago (a contact Intercom has just created may not be found at once)."""
    identifies = Delivery.objects.filter(user_id=user_id, call__type=CallType.IDENTIFY)
    last = identifies.filter(state=State.DELIVERED, call__payload__isnull=False).order_by("-created_at").first()
    if last is None or identifies.filter(state__in=(State.PENDING, State.DELIVERING)).exists():
        return
    key, now = (workspace_id, user_id), time.monotonic()
    if now - _reidentified.get(key, float("-inf")) < REIDENTIFY_AFTER:
        return
    _reidentified[key] = now
    logger.warning("user %r is unknown to Intercom: their identify %s is sent again", user_id, last.pk)
    moment = timezone.now()
    Delivery.objects.filter(pk=last.pk, state=State.DELIVERED).update(
        state=State.PENDING, next_attempt_at=moment, trigger=Trigger.RELEASE, enqueued_at=None, updated_at=moment
    )


def attribute(delivery, call):
    """The userId a call is forwarded for; an anonymous call takes the userId of an identify
    that carried the same anonymousId."""
    if delivery.user_id or not call.anonymous_id:
        return delivery.user_id
    linked = (
        Call.objects.filter(anonymous_id=call.anonymous_id, type=CallType.IDENTIFY)
        .exclude(user_id="")
        .order_by("received_at")
        .values_list("user_id", flat=True)
        .first()
    )
    if linked:
        Delivery.objects.filter(pk=delivery.pk).update(user_id=linked)
        delivery.user_id = linked
    return linked or ""


def release_user(user_id, anonymous_id=""):
    """After a successful identify: the user's waiting deliveries (and anonymous ones with the
    same anonymousId) become due, in the order received."""
    now = timezone.now()
    Delivery.objects.filter(user_id=user_id, state=State.WAITING).update(
        state=State.PENDING, next_attempt_at=now, trigger=Trigger.RELEASE, enqueued_at=None, updated_at=now
    )
    if anonymous_id:
        Delivery.objects.filter(anonymous_id=anonymous_id, user_id="", state=State.WAITING).update(
            user_id=user_id,
            state=State.PENDING,
            next_attempt_at=now,
            trigger=Trigger.RELEASE,
            enqueued_at=None,
            updated_at=now,
        )
