"""Login throttling: after RELAY_LOGIN_FAILURES_PER_USER failed logins of one username, or
RELAY_LOGIN_FAILURES_PER_IP of one client IP, within RELAY_LOGIN_WINDOW, further attempts are
refused without checking the password (hashing it costs the CPU that ingestion needs).

An attempt takes its place in both counts before the password is checked, and gives it back when
the password was right: so concurrent attempts never get more checks than the limits, and a
success is no failure. A success clears the username's count, never the IP's. A window starts at
its key's first failure; once it ends, the count starts again.

Counted where every web process sees the same number, never in process memory: in Redis (one Lua
script per step) when REDIS_URL is set, else in the database (dashboard.models.LoginFailures,
conditional UPDATEs). If Redis cannot be reached the database counts instead (as the ingestion
rate limit does), so that a Redis restart does not lift the limit for long.
"""

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from dashboard.models import LoginFailures

logger = logging.getLogger(__name__)

REDIS_PREFIX = "relay:login-failures"
REDIS_TIMEOUT_SECONDS = 0.5
# One warning a minute at most while Redis is unreachable.
REDIS_WARNING_INTERVAL = 60
_last_redis_warning = 0.0
# An IPv6 client usually holds a whole /64: it counts as one address.
IPV6_PREFIX = 64


@dataclass(frozen=True)
class Refusal:
    """A login refused unchecked: which count is full, and for how many more seconds."""

    scope: str  # "username" or "client IP"
    retry_after: int

    @property
    def minutes(self):
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def message(self):
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed logins; try again in {self.minutes} {unit}."


def client_ip(request):
    """The client's address: REMOTE_ADDR, or the first X-Forwarded-For hop when DJANGO_BEHIND_PROXY
    is true (the proxy must set that header, not append to what the client sent). An IPv6 client's
    /64 network; "" when there is no valid address."""
    if request is None:
        return ""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.RELAY_BEHIND_PROXY:
        first_hop = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        address = first_hop or address
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def user_key(username):
    """The username's counter, whatever its case or Unicode form (the database holds a hash only:
    people type passwords into the username field)."""
    normal = unicodedata.normalize("NFKC", username).strip().casefold()
    return "user:" + hashlib.sha256(normal.encode()).hexdigest()[:40]


def counters(request, username):
    """[(scope, key, limit)] an attempt counts in: its username's, and its client IP's if known."""
    found = [("username", user_key(username), settings.RELAY_LOGIN_FAILURES_PER_USER)]
    ip = client_ip(request)
    if ip:
        found.append(("client IP", f"ip:{ip}", settings.RELAY_LOGIN_FAILURES_PER_IP))
    return found


def begin(request, username):
    """Count this attempt as a failure before its password is checked; a Refusal (and nothing
    counted) when the username's or the client IP's count is already full."""
    seconds = max(1, settings.RELAY_LOGIN_WINDOW)
    taken = []
    for scope, key, limit in counters(request, username):
        wait = _take(key, limit, seconds)
        if wait is not None:
            for earlier in taken:
                _give_back(earlier)
            refusal = Refusal(scope, wait)
            logger.warning(
                "login refused without checking the password: %s failed logins of this %s within %s s "
                "(username %r, client %s); allowed again in %s s",
                limit,
                scope,
                seconds,
                username[:150],
                client_ip(request) or "unknown",
                refusal.retry_after,
            )
            return refusal
        taken.append(key)
    return None


def succeeded(request, username):
    """The password was right: the attempt was no failure. The username's count is cleared; the
    client IP's keeps its earlier failures."""
    for scope, key, _ in counters(request, username):
        if scope == "username":
            _clear(key)
        else:
            _give_back(key)


# -- the counters --------------------------------------------------------------------------------


def _take(key, limit, seconds):
    """Count one failure of `key` unless it holds `limit` already: None, or seconds to wait."""
    if settings.REDIS_URL:
        try:
            wait_ms = _script(settings.REDIS_URL, TAKE)(keys=[_redis_key(key)], args=[limit, seconds * 1000])
            return None if wait_ms < 0 else max(1, math.ceil(wait_ms / 1000))
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    return _take_in_database(key, limit, seconds, timezone.now())


def _give_back(key):
    if settings.REDIS_URL:
        try:
            _script(settings.REDIS_URL, GIVE_BACK)(keys=[_redis_key(key)])
            return
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    LoginFailures.objects.filter(key=key, failures__gt=0).update(failures=F("failures") - 1)


def _clear(key):
    if settings.REDIS_URL:
        try:
            _redis(settings.REDIS_URL).delete(_redis_key(key))
            return
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    LoginFailures.objects.filter(key=key).delete()


def _take_in_database(key, limit, seconds, now):
    window = timedelta(seconds=seconds)
    rows = LoginFailures.objects.filter(key=key)
    for _ in range(5):
        if rows.filter(expires_at__gt=now, failures__lt=limit).update(failures=F("failures") + 1):
            return None
        expires_at = rows.values_list("expires_at", flat=True).first()
        if expires_at is not None and expires_at > now:
            return max(1, math.ceil((expires_at - now).total_seconds()))  # full
        if expires_at is not None:
            # Its window has ended: this failure starts the next one (unless another process did).
            if rows.filter(expires_at__lte=now).update(failures=1, expires_at=now + window):
                return None
            continue
        try:
            with transaction.atomic():
                LoginFailures.objects.create(key=key, failures=1, expires_at=now + window)
        except IntegrityError:
            continue  # another process created it a moment ago
        LoginFailures.objects.filter(expires_at__lt=now).delete()
        return None
    return 1  # never seen: five lost races in a row; refused for a second rather than unchecked


# KEYS[1]: the counter; ARGV: the limit, the window in ms. -1 when counted, else ms to wait.
TAKE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return ttl
end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1
"""
# One failure less, never below zero, keeping the window's end (no new key is made).
GIVE_BACK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


def _redis_key(key):
    return f"{REDIS_PREFIX}:{key}"


@lru_cache(maxsize=4)
def _redis(url):
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


@lru_cache(maxsize=8)
def _script(url, source):
    return _redis(url).register_script(source)


def _warn_redis_down(exc):
    global _last_redis_warning
    if time.monotonic() - _last_redis_warning > REDIS_WARNING_INTERVAL:
        _last_redis_warning = time.monotonic()
        logger.warning("login throttle: Redis unavailable (%s); counting in the database", exc)
