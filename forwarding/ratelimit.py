"""One rate limiter shared by every worker, kept in the database, following the
X-RateLimit-* headers Intercom sends with each answer."""

from datetime import UTC, datetime

from django.db.models import F, Q
from django.db.models.functions import Least
from django.utils import timezone

from forwarding.models import RateLimitWindow

NAME = "intercom"
# Within one window the shared count goes down with every request taken; an answer's own count
# (lower when others use the same token) is written back every SYNC_EVERY answers, and at each
# answer once the window runs low.
SYNC_EVERY = 10
LOW_SHARE = 0.2
_last_sync = {"reset_at": None, "answers": 0}


def wait_seconds(now=None):
    """Take one request from the current window: 0 to go now, else seconds until it resets."""
    now = now or timezone.now()
    taken = RateLimitWindow.objects.filter(name=NAME, reset_at__gt=now, remaining__gt=0).update(
        remaining=F("remaining") - 1
    )
    if taken:
        return 0
    window = RateLimitWindow.objects.filter(name=NAME).first()
    if window is None or window.reset_at is None or window.reset_at <= now or window.remaining is None:
        return 0  # no window known, or it has ended: the answer will tell us the new one
    return (window.reset_at - now).total_seconds()


def observe(response):
    """Record what the answer's headers say about the window."""
    limit = response.header_int("X-RateLimit-Limit")
    remaining = response.header_int("X-RateLimit-Remaining")
    reset = response.header_int("X-RateLimit-Reset")
    if remaining is None or reset is None:
        return
    reset_at = datetime.fromtimestamp(reset, tz=UTC)
    if not needs_sync(reset_at, remaining, limit):
        return
    now = timezone.now()
    # Same window: other workers may have taken more since this answer left Intercom.
    same = RateLimitWindow.objects.filter(name=NAME, reset_at=reset_at).update(
        remaining=Least(F("remaining"), remaining), limit=limit, updated_at=now
    )
    if same:
        return
    newer = RateLimitWindow.objects.filter(Q(reset_at__lt=reset_at) | Q(reset_at=None), name=NAME).update(
        remaining=remaining, limit=limit, reset_at=reset_at, updated_at=now
    )
    if not newer and not RateLimitWindow.objects.filter(name=NAME).exists():
        RateLimitWindow.objects.get_or_create(
            name=NAME, defaults={"remaining": remaining, "limit": limit, "reset_at": reset_at, "updated_at": now}
        )


def needs_sync(reset_at, remaining, limit):
    """Whether this answer's window must be written: a new window, a low count, or every
    SYNC_EVERY answers (this process's count; each worker syncs on its own)."""
    same = _last_sync["reset_at"] == reset_at
    if same and _last_sync["answers"] + 1 < SYNC_EVERY and remaining > LOW_SHARE * (limit or 0):
        _last_sync["answers"] += 1
        return False
    _last_sync.update(reset_at=reset_at, answers=0)
    return True
