"""What a failed exchange means for a delivery: retry when, wait, fail or hold (DESIGN.md §6)."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from forwarding.models import Outcome

RETRYABLE_STATUSES = {408, 500, 502, 503, 504}
CAP_MESSAGE = "active event names"
JITTER = 0.2
# A 429 without a usable reset header waits one of Intercom's 10-second windows.
DEFAULT_RATE_LIMIT_WAIT = 10
MAX_RATE_LIMIT_WAIT = 120


@dataclass(frozen=True)
class Verdict:
    """The outcome of an attempt that did not succeed, and the cause to group it by."""

    outcome: str
    cause: str
    error: str
    status: int | None = None
    wait_seconds: float | None = None  # rate limit: wait this long, outside the schedule


def is_cap_error(response):
    """Intercom's 422 "Cannot have more than 120 active event names"."""
    return response.status == 422 and CAP_MESSAGE in (response.error_message or "").lower()


def judge(response, now=None):
    """The verdict on an unsuccessful response (callers handle 2xx, 404 and 409 themselves)."""
    status = response.status
    message = response.error_message or (response.body if isinstance(response.body, str) else "")
    error = f"{status} {message}".strip() if status else response.error
    if status is None:
        cause = "timeout" if response.error.startswith("timeout") else "network"
        return Verdict(Outcome.RETRY, cause, error)
    if status == 429:
        return Verdict(Outcome.RATE_LIMITED, "rate_limited", error, status, rate_limit_wait(response, now))
    if status in (401, 403):
        return Verdict(Outcome.AUTH, f"http_{status}", error, status)
    if status in RETRYABLE_STATUSES:
        return Verdict(Outcome.RETRY, f"http_{status}", error, status)
    if is_cap_error(response):
        return Verdict(Outcome.HELD, "event_name_cap", error, status)
    return Verdict(Outcome.FAILED, f"http_{status}", error, status)


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
