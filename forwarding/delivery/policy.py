"""What a failed exchange means for a delivery: retry when, wait, fail or hold; and the
delivery's next state when it is to be tried again (docs/architecture.md, "States")."""

import random
from datetime import UTC, datetime, timedelta

from django.conf import settings

from forwarding.delivery.result import Result
from forwarding.models import Outcome, State

RETRYABLE_STATUSES = {408, 500, 502, 503, 504}
CAP_MESSAGE = "active event names"
JITTER = 0.2
# A 429 without a usable reset header waits one of Intercom's 10-second windows.
DEFAULT_RATE_LIMIT_WAIT = 10
MAX_RATE_LIMIT_WAIT = 120


def is_cap_error(response):
    """Intercom's 422 "Cannot have more than 120 active event names"."""
    return response.status == 422 and CAP_MESSAGE in (response.error_message or "").lower()


def judge(response, warnings=(), now=None):
    """The Result of an unsuccessful response (callers handle 2xx, 404 and 409 themselves)."""
    status = response.status
    message = response.error_message or (response.body if isinstance(response.body, str) else "")
    error = f"{status} {message}".strip() if status else response.error
    if status is None:
        cause = "timeout" if response.error.startswith("timeout") else "network"
        return Result(Outcome.RETRY, None, error, cause, warnings=list(warnings))
    if status == 429:
        wait = rate_limit_wait(response, now)
        return Result(Outcome.RATE_LIMITED, status, error, "rate_limited", wait, list(warnings))
    if is_cap_error(response):
        return Result(Outcome.HELD, status, error, "event_name_cap", warnings=list(warnings))
    if status in (401, 403):
        outcome = Outcome.AUTH
    elif status in RETRYABLE_STATUSES:
        outcome = Outcome.RETRY
    else:
        outcome = Outcome.FAILED
    return Result(outcome, status, error, f"http_{status}", warnings=list(warnings))


def rate_limit_wait(response, now=None):
    """Seconds until X-RateLimit-Reset (a Unix time), clamped; Retry-After as a fallback."""
    now = now or datetime.now(UTC)
    reset = response.header_int("X-RateLimit-Reset")
    if reset:
        wait = reset - now.timestamp()
    else:
        wait = response.header_int("Retry-After") or DEFAULT_RATE_LIMIT_WAIT
    return min(max(wait, 0.5), MAX_RATE_LIMIT_WAIT)


def retry_delay(retry_count):
    """The delay before retry number `retry_count` (1-based), with ±20% jitter; None when used up."""
    schedule = settings.RELAY_RETRY_SCHEDULE
    if retry_count > len(schedule):
        return None
    base = schedule[retry_count - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def after(seconds, now):
    return now + timedelta(seconds=seconds)


def next_state(delivery, result, now):
    """Field changes for an attempt that will be tried again (or has used up its retries)."""
    common = {"last_error": result.error[:500], "error_cause": result.cause}
    if result.outcome == Outcome.RATE_LIMITED:
        return {**common, "state": State.PENDING, "next_attempt_at": after(result.wait_seconds, now)}
    if result.outcome == Outcome.AUTH:
        # The token is refused: wait and try again slowly, never drop.
        return {**common, "state": State.PENDING, "next_attempt_at": after(settings.RELAY_AUTH_RETRY_SECONDS, now)}
    retry_count = delivery.retry_count + 1
    delay = retry_delay(retry_count)
    if delay is None:
        return {**common, "state": State.FAILED, "last_error": f"retries used up: {result.error}"[:500]}
    return {**common, "state": State.PENDING, "retry_count": retry_count, "next_attempt_at": after(delay, now)}
