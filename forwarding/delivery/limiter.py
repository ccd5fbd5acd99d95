"""One rate limiter shared by every worker, kept in the database, following the
X-RateLimit-* headers Intercom sends with each answer. From a large window a worker takes
requests BLOCK at a time, spends them until the window resets, and gives back what its task left."""

import time
from datetime import UTC, datetime, timedelta

from django.db import connection
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
_last_sync = {"reset_at": None, "answers": 0, "headers": True}
# Blocks are taken only from large windows (Intercom's are over a thousand), and not once the
# window runs low: there the count must follow each answer, or the requests other workers have in
# flight when a new window is learnt (the answers' counts do not know them yet) end in 429s.
BLOCK = 10
BLOCKS_FROM_LIMIT = 200
# With no window known (none yet, or answers come without headers), the next UNKNOWN_BLOCK - 1
# requests of this process go without asking, for at most this long.
UNKNOWN_BLOCK = 50
UNKNOWN_WINDOW_SECONDS = 1.0
# A window that has just ended: one probe at a time (see `probe`).
PROBING = -1
PROBE_SECONDS = timedelta(seconds=0.5)
PROBE_WAIT_SECONDS = 0.01
_held = {"tokens": 0, "reset_at": None, "until": 0.0}


# The windows are 10 seconds; a worker waits for the next one rather than fail.
WAIT_POLL_SECONDS = 2.0
WAIT_AT_MOST_SECONDS = 30.0


def wait():
    """Wait until the shared window allows one more request (at most WAIT_AT_MOST_SECONDS): every
    request to Intercom goes through here, GET /me included."""
    waited = 0.0
    while waited < WAIT_AT_MOST_SECONDS:
        seconds = wait_seconds()
        if seconds <= 0:
            return
        pause = min(seconds, WAIT_POLL_SECONDS)
        time.sleep(pause)
        waited += pause


def wait_seconds(now=None):
    """Take one request from the current window: 0 to go now, else seconds until it resets."""
    now = now or timezone.now()
    if _held["tokens"] > 0 and (now < _held["reset_at"] if _held["reset_at"] else time.monotonic() < _held["until"]):
        _held["tokens"] -= 1
        return 0
    hold(0)
    reset_at = take_block(now)
    if reset_at is not None:
        hold(BLOCK - 1, reset_at=reset_at)
        return 0
    current = RateLimitWindow.objects.filter(name=NAME, reset_at__gt=now)
    if current.filter(remaining__gt=0).update(remaining=F("remaining") - 1):
        return 0
    window = RateLimitWindow.objects.filter(name=NAME).first()
    unknown = window is None or window.reset_at is None or window.remaining is None
    if unknown or (window.reset_at <= now and not _last_sync["headers"]):
        # No window known, or it has ended and answers come without headers: go, and let the
        # next few requests go without asking.
        hold(UNKNOWN_BLOCK - 1, until=time.monotonic() + UNKNOWN_WINDOW_SECONDS)
        return 0
    if window.reset_at <= now:
        return probe(window, now)
    return (window.reset_at - now).total_seconds()


def take_block(now):
    """Take BLOCK requests from a current window that has plenty, in one statement (a worker
    takes one every BLOCK deliveries): the window's reset time, or None when it has not."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(RateLimitWindow._meta.db_table)} SET remaining = remaining - %s"  # noqa: S608
            f" WHERE name = %s AND reset_at > %s AND {quote('limit')} >= %s"
            f" AND remaining >= {quote('limit')} * %s + %s RETURNING reset_at",
            [BLOCK, NAME, connection.ops.adapt_datetimefield_value(now), BLOCKS_FROM_LIMIT, LOW_SHARE, BLOCK],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    reset_at = row[0]
    if isinstance(reset_at, str):
        reset_at = datetime.fromisoformat(reset_at)
    # SQLite answers the naive UTC that Django stores there.
    return reset_at if reset_at.tzinfo else reset_at.replace(tzinfo=UTC)


def probe(ended, now):
    """The window has just ended: one request (of all the workers) goes to learn the new one from
    its answer; the others wait for that. Were they all to go, the first answer's count would not
    know the others' requests, and the window would be overspent by them. A probe that has not
    been answered within PROBE_SECONDS (lost, or no headers came back) is taken over."""
    windows = RateLimitWindow.objects.filter(name=NAME, reset_at=ended.reset_at)
    if windows.filter(remaining__gte=0).update(remaining=PROBING, updated_at=now):
        return 0
    if windows.filter(remaining=PROBING, updated_at__lt=now - PROBE_SECONDS).update(updated_at=now):
        return 0
    return PROBE_WAIT_SECONDS


def hold(tokens, reset_at=None, until=0.0):
    """Keep `tokens` requests in this process: the window's until `reset_at`, or with no window
    known until the monotonic time `until`. hold(0) lets go of them."""
    _held.update(tokens=tokens, reset_at=reset_at, until=until)


def give_back():
    """Return the requests this process took and did not send to the shared window (a task
    ends: another worker may need them before the window resets)."""
    tokens, reset_at = _held["tokens"], _held["reset_at"]
    hold(0)
    if tokens and reset_at is not None:
        RateLimitWindow.objects.filter(name=NAME, reset_at=reset_at).update(remaining=F("remaining") + tokens)


def observe(response):
    """Record what the answer's headers say about the window."""
    if response.status is None:
        return  # no answer (a timeout, a network error): nothing learnt
    if response.status == 429:
        hold(0)  # over the limit after all: ask the shared window again
    limit = response.header_int("X-RateLimit-Limit")
    remaining = response.header_int("X-RateLimit-Remaining")
    reset = response.header_int("X-RateLimit-Reset")
    headers = remaining is not None and reset is not None
    if not headers and _last_sync["headers"]:
        # Answers stopped carrying the headers: no window is known any more, for every worker.
        RateLimitWindow.objects.filter(name=NAME, reset_at__lte=timezone.now()).update(remaining=None)
    _last_sync["headers"] = headers
    if not headers:
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
