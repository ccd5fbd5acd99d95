"""The per-write-key ingestion rate limit: RELAY_INGEST_RATE_LIMIT requests per fixed window.

Counted where every web process sees the same number, never in process memory: in Redis
(INCR + EXPIRE in one MULTI) when REDIS_URL is set, else in the database (a conditional UPDATE
of one row per source and window, an INSERT for a new window). If Redis cannot be reached the
database counts instead, so that a Redis restart neither stops ingestion nor lifts the limit.

On SQLite the database's count goes into the request's own transaction (`admit`, then
`Admission.settle`): SQLite has one write lock, and a count committed on its own made each
request take it twice. Before the body is read the window is only read, so that a throttled key
still costs no parsing. PostgreSQL counts at once, as Redis does: a window row updated inside the
storing transaction would stay locked until its commit, queueing the key's concurrent requests.
"""

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from forwarding.ingestion.errors import IngestionError, rate_limited
from forwarding.models import IngestWindow

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5
# One warning a minute at most while Redis is unreachable, not one per request.
REDIS_WARNING_INTERVAL = 60
_last_redis_warning = 0.0


def take(source, now=None):
    """Count one request of `source`; raise IngestionError (429, with Retry-After) when over the limit."""
    if settings.RELAY_INGEST_RATE_LIMIT is None:
        return
    limit, seconds = settings.RELAY_INGEST_RATE_LIMIT
    now = now or timezone.now()
    start = window_start(now, seconds)
    allowed = _take_in_redis(source, limit, seconds, start) if settings.REDIS_URL else None
    if allowed is None:
        allowed = _take_in_database(source, limit, start)
    if not allowed:
        _refuse(now)


def admit(source):
    """Let a request of `source` in, or raise the 429 (see `take`); returns its `Admission`, whose
    `settle()` the request calls inside the transaction that stores it, or once answered.

    Counted at once, like `take`, but on SQLite without Redis: there the window is only read now,
    and counted by `settle`, which raises the 429 if the window filled up meanwhile.
    """
    if settings.RELAY_INGEST_RATE_LIMIT is None or settings.REDIS_URL or connection.vendor != "sqlite":
        take(source)
        return Admission(None, None)
    limit, seconds = settings.RELAY_INGEST_RATE_LIMIT
    now = timezone.now()
    if _requests_in(source, window_start(now, seconds)) >= limit:
        _refuse(now)
    return Admission(source, now)


class Admission:
    """A request let in by `admit`: counted already, or to be counted by `settle`."""

    def __init__(self, source, now):
        self.source, self.now = source, now
        self.pending = source is not None

    def settle(self):
        """Count the request, once; raise the 429 when its window filled up since `admit`."""
        if not self.pending:
            return
        self.pending = False
        limit, seconds = settings.RELAY_INGEST_RATE_LIMIT
        if not _take_in_database(self.source, limit, window_start(self.now, seconds)):
            _refuse(self.now)

    def rolled_back(self):
        """The transaction that settled it was rolled back, and its count with it."""
        self.pending = self.source is not None

    def settle_quietly(self):
        """`settle` for a request already answered otherwise (a 400, say): counted if there is room."""
        try:
            self.settle()
        except IngestionError:
            pass  # the window is full: the answer stands, and a refused request counts nothing
        except DatabaseError:
            logger.warning("ingestion rate limit: the database did not count a request answered early")


def _refuse(now):
    """The 429 of a request at `now`, whose window is full."""
    limit, seconds = settings.RELAY_INGEST_RATE_LIMIT
    retry_after = max(1, math.ceil((window_start(now, seconds) + timedelta(seconds=seconds) - now).total_seconds()))
    raise rate_limited(
        f"This write key sent more than {limit} requests in {seconds} s; retry after {retry_after} s.", retry_after
    )


def window_start(now, seconds):
    """The start of the fixed window holding `now`: windows are aligned on the Unix epoch."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _take_in_database(source, limit, start):
    if _count_one(source, limit, start):
        return True
    try:
        with transaction.atomic():
            IngestWindow.objects.create(source=source, started_at=start, requests=1)
    except IntegrityError:
        # The window exists: it is full, or another process created it a moment ago.
        return _count_one(source, limit, start)
    IngestWindow.objects.filter(source=source, started_at__lt=start).delete()
    return True


def _requests_in(source, start):
    """The requests counted so far in the source's window (0 when it has none yet); raw SQL, as below."""
    table = connection.ops.quote_name(IngestWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT requests FROM {table} WHERE source_id = %s AND started_at = %s",  # noqa: S608
            [source.pk, connection.ops.adapt_datetimefield_value(start)],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def _count_one(source, limit, start):
    """One more request in the source's window, if it is under `limit`; False when there is no such
    window yet or it is full. Raw SQL: every ingestion request runs it, and the ORM's compiling
    cost more than the statement (bench/single_call.py)."""
    table = connection.ops.quote_name(IngestWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET requests = requests + 1"  # noqa: S608
            " WHERE source_id = %s AND started_at = %s AND requests < %s",
            [source.pk, connection.ops.adapt_datetimefield_value(start), limit],
        )
        return cursor.rowcount == 1


def _take_in_redis(source, limit, seconds, start):
    """True or False; None when Redis cannot answer (the database counts instead)."""
    # The key names a hash prefix, never the key; keys are random, so prefixes do not collide.
    key = f"relay:ingest-rate:{source.key_hash[:24]}:{seconds}:{int(start.timestamp())}"
    try:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, seconds + 60)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        _warn_redis_down(exc)
        return None
    return count <= limit


@lru_cache(maxsize=4)
def _redis(url):
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _warn_redis_down(exc):
    global _last_redis_warning
    if time.monotonic() - _last_redis_warning > REDIS_WARNING_INTERVAL:
        _last_redis_warning = time.monotonic()
        logger.warning("ingestion rate limit: Redis unavailable (%s); counting in the database", exc)
