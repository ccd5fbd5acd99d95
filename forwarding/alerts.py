"""Alerts that reach a person: the rules are code (CHECKS, one per AlertRule.Kind), their threshold
and switch are rows the operators edit. `evaluate` runs from the sweeper's task about once a
minute: a rule that becomes true fires once to every enabled target, repeats at most every
REPEAT_EVERY while it stays true, and sends a resolve when it clears. Sending never raises: each
post, answered or not, is a SentAlert row. Secrets and target URLs are never logged."""

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from forwarding import metric_values as values
from forwarding.models import AlertRule, AlertState, AlertTarget, EventName, SentAlert

logger = logging.getLogger(__name__)

Kind = AlertRule.Kind
Event = SentAlert.Event
REPEAT_EVERY = timedelta(hours=1)
TIMEOUT_SECONDS = 5
MIN_ATTEMPTS = 20  # the failure rate is judged on at least this many attempts
NAMES_LISTED = 5
PREFIX = "[Intercom Relay]"


@dataclass(frozen=True)
class Spec:
    """A rule's threshold: its default, unit, bounds, and what it means ("" unit: none)."""

    default: int
    unit: str
    minimum: int
    maximum: int
    explains: str


WEEK_MINUTES = 7 * 24 * 60
RULES = {
    Kind.AUTH_FAILED: Spec(0, "", 0, 0, "Fires while Intercom answers 401/403 to the token."),
    Kind.UNREACHABLE: Spec(10, "minutes", 1, WEEK_MINUTES, "Fires once Intercom has been unreachable this long."),
    Kind.FAILURE_RATE: Spec(
        25, "%", 1, 100, f"Fires when this share of the last 15 minutes' attempts failed ({MIN_ATTEMPTS} at least)."
    ),
    Kind.BACKLOG_AGE: Spec(15, "minutes", 1, WEEK_MINUTES, "Fires once a pending delivery has been due this long."),
    Kind.EVENT_NAME_SLOTS: Spec(90, "%", 1, 100, "Fires when this share of INTERCOM_EVENT_NAME_LIMIT is used."),
    Kind.ATTRIBUTE_SLOTS: Spec(90, "%", 1, 100, "Fires when this share of INTERCOM_ATTRIBUTE_LIMIT is used."),
    Kind.NAMES_HELD: Spec(0, "names", 0, 100_000, "Fires when more event names than this hold deliveries."),
}


class Facts:
    """What the checks of one evaluation read, each at most once."""

    def __init__(self, now):
        self.now = now

    @cached_property
    def status(self):
        return values.intercom_status()


def minutes(delta):
    return f"{int(delta.total_seconds() // 60)} min"


def moment(at):
    return f"{at:%Y-%m-%d %H:%M} UTC"


def check_auth_failed(rule, facts):
    status = facts.status
    if status is None or status.auth_failed_at is None:
        return False, ""
    return True, f"Intercom refused the token at {moment(status.auth_failed_at)}: {status.auth_error or 'no message'}"


def check_unreachable(rule, facts):
    since = facts.status.unreachable_since if facts.status else None
    if since is None or facts.now - since < timedelta(minutes=rule.threshold):
        return False, ""
    down = minutes(facts.now - since)
    return (
        True,
        f"no answer since {moment(since)} ({down}; threshold {rule.threshold} min): {facts.status.failure_error}",
    )


def check_failure_rate(rule, facts):
    window = values.attempts(facts.now)
    if window.total < MIN_ATTEMPTS or window.failed * 100 < rule.threshold * window.total:
        return False, ""
    span = minutes(timedelta(seconds=window.window_seconds))
    share = round(100 * window.failure_rate)
    return (
        True,
        f"{window.failed} of {window.total} attempts failed in the last {span} ({share}%; threshold {rule.threshold}%)",
    )


def check_backlog_age(rule, facts):
    found = values.backlog(facts.now)
    waited = timedelta(seconds=found.oldest_due_seconds)
    if not found.due or waited < timedelta(minutes=rule.threshold):
        return False, ""
    return True, f"{found.due} deliveries due, the oldest for {minutes(waited)} (threshold {rule.threshold} min)"


def check_event_name_slots(rule, facts):
    usage = values.event_name_usage()
    return slots_check(rule, usage.used, usage.limit, "event-name slots (INTERCOM_EVENT_NAME_LIMIT)")


def check_attribute_slots(rule, facts):
    used = sum(values.attribute_slots(facts.status).values())
    return slots_check(rule, used, values.attribute_limit(), "custom data attributes (INTERCOM_ATTRIBUTE_LIMIT)")


def slots_check(rule, used, limit, what):
    if used * 100 < rule.threshold * limit:
        return False, ""
    return True, f"{used} of {limit} {what} used ({round(100 * used / limit) if limit else 100}%)"


def check_names_held(rule, facts):
    held = values.names_held()
    if held <= rule.threshold:
        return False, ""
    top = EventName.objects.filter(held_count__gt=0).order_by("-held_count").values_list("name", "held_count")
    listed = ", ".join(f"{name} ({count})" for name, count in top[:NAMES_LISTED])
    return True, f"{held} event names hold deliveries: {listed}{', …' if held > NAMES_LISTED else ''}"


CHECKS = {
    Kind.AUTH_FAILED: check_auth_failed,
    Kind.UNREACHABLE: check_unreachable,
    Kind.FAILURE_RATE: check_failure_rate,
    Kind.BACKLOG_AGE: check_backlog_age,
    Kind.EVENT_NAME_SLOTS: check_event_name_slots,
    Kind.ATTRIBUTE_SLOTS: check_attribute_slots,
    Kind.NAMES_HELD: check_names_held,
}


# -- the rules' rows -----------------------------------------------------------------------------


def rules():
    """Every rule with its state, in RULES' order; a row missing (a flushed table, a new kind) is
    created with its default."""
    found = {rule.kind: rule for rule in AlertRule.objects.select_related("state")}
    missing = [AlertRule(kind=kind, threshold=spec.default) for kind, spec in RULES.items() if kind not in found]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)
        found = {rule.kind: rule for rule in AlertRule.objects.select_related("state")}
    ordered = [found[kind] for kind in RULES if kind in found]
    for rule in ordered:
        if not hasattr(rule, "state"):
            rule.state, _ = AlertState.objects.get_or_create(rule=rule)
    return ordered


def threshold_problem(kind, threshold):
    """Why `threshold` cannot be the rule's, or ""."""
    spec = RULES[kind]
    if not spec.minimum <= threshold <= spec.maximum:
        return f"the threshold is between {spec.minimum} and {spec.maximum} {spec.unit}".rstrip() + "."
    return ""


# -- evaluation ----------------------------------------------------------------------------------


def evaluate(now=None):
    """Check every enabled rule and send what changed; returns {kind: event sent}. Never raises."""
    try:
        return _evaluate(now or timezone.now())
    except Exception:
        logger.exception("alerts: the evaluation failed")
        return {}


def _evaluate(now):
    facts, sent = Facts(now), {}
    for rule in rules():
        state = rule.state
        if not rule.enabled:
            if state.firing_since is not None:  # switched off while firing: cleared without a message
                AlertState.objects.filter(pk=rule.pk).update(firing_since=None, resolved_at=now)
            continue
        try:
            active, detail = CHECKS[rule.kind](rule, facts)
        except Exception:
            logger.exception("alerts: the check of %s failed", rule.kind)
            continue
        event = transition(rule, state, active, detail[:500], now)
        if event is not None:
            notify(rule, event, detail or state.detail, state.firing_since or now, now)
            sent[rule.kind] = event
    return sent


def transition(rule, state, active, detail, now):
    """The event to send, after taking it in the state row with a conditional UPDATE (two
    evaluations at once send it once)."""
    rows = AlertState.objects.filter(pk=rule.pk)
    if active and state.firing_since is None:
        taken = rows.filter(firing_since=None).update(firing_since=now, last_sent_at=now, detail=detail)
        return Event.FIRE if taken else None
    if active and now - (state.last_sent_at or state.firing_since) >= REPEAT_EVERY:
        taken = rows.filter(last_sent_at=state.last_sent_at).update(last_sent_at=now, detail=detail)
        return Event.REPEAT if taken else None
    if active:
        if detail != state.detail:
            rows.update(detail=detail)
        return None
    if state.firing_since is not None:
        taken = rows.filter(firing_since=state.firing_since).update(firing_since=None, resolved_at=now)
        return Event.RESOLVE if taken else None
    return None


def notify(rule, event, detail, since, now):
    label = rule.get_kind_display()
    if event == Event.FIRE:
        text = f"{PREFIX} FIRING: {label}. {detail}"
    elif event == Event.REPEAT:
        text = f"{PREFIX} STILL FIRING since {moment(since)}: {label}. {detail}"
    else:
        text = f"{PREFIX} RESOLVED: {label} (fired at {moment(since)}, for {minutes(now - since)})."
    fields = {"rule": rule.kind, "threshold": rule.threshold, "detail": detail, "firing_since": since.isoformat()}
    for target in AlertTarget.objects.filter(enabled=True):
        post(target, event, text, fields, rule)


def send_test(target, by):
    """The dashboard's "send test": one message to `target`, enabled or not; returns its SentAlert."""
    text = f"{PREFIX} Test alert sent from the dashboard by {by}: this target receives the relay's alerts."
    return post(target, Event.TEST, text, {"rule": None})


# -- sending -------------------------------------------------------------------------------------


def page_link():
    base = (getattr(settings, "RELAY_PUBLIC_URL", "") or "").rstrip("/")
    return f"{base}/admin/alerts/" if base else ""


def body_of(target, event, text, fields, at):
    link = page_link()
    if target.kind == AlertTarget.Kind.SLACK:
        return {"text": f"{text} {link}".strip()}
    return {"event": event, "text": text, "timestamp": int(at.timestamp()), "link": link, **fields}


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(target, event, text, fields, rule=None):
    """POST one message to one target; its answer (or why there was none) is recorded, never raised."""
    at = timezone.now()
    body = json.dumps(body_of(target, event, text, fields, at), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "intercom-relay-alerts"}
    status, error = None, ""
    if target.kind == AlertTarget.Kind.JSON:
        if target.secret:
            stamp = str(int(at.timestamp()))  # also the body's "timestamp": signed with it
            headers.update({"X-Relay-Signature": signature(target.secret, body), "X-Relay-Timestamp": stamp})
        else:
            error = "no secret to sign the body with"
    if not error:
        try:
            response = requests.post(
                target.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except Exception as exc:  # any failure to send is recorded, never raised
            error = scrubbed(f"{exc.__class__.__name__}: {exc}", target.url)
    if error:
        logger.warning("alert %s to target %s (#%s) failed: %s", event, target.name, target.pk, error[:200])
    answer = {"status_code": status, "error": error[:500], "sent_at": at, "body": body.decode()[:1000]}
    return SentAlert.objects.create(rule=rule, target=target, target_name=target.name, event=event, **answer)


def scrubbed(message, url):
    """An error without the target's URL or path (a webhook's URL is a credential)."""
    parts = urlsplit(url)
    for secret_part in (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path):
        if len(secret_part) > 1:
            message = message.replace(secret_part, "/…")
    return message
