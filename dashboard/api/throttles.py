"""The operator API's rate limit: RELAY_API_RATE requests per token ("600/min" by default; DRF's
form, "<n>/<s|sec|m|min|h|hour|d|day>", or "off"). Over it: 429 with Retry-After.

DRF's throttles count in Django's cache. The settings define no CACHES, so the default cache is
each process's own memory: with several web processes a token could make that many requests in
each. With REDIS_URL the counts are kept in Redis instead, shared by every process; while Redis
cannot be reached they fall back to the process's memory (a warning a minute at most)."""

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)

DEFAULT_RATE = "600/min"
REDIS_TIMEOUT_SECONDS = 0.5
WARNING_INTERVAL = 60
_last_warning = 0.0


def rate():
    """RELAY_API_RATE, or None when it is "off" (no limit)."""
    value = str(getattr(settings, "RELAY_API_RATE", DEFAULT_RATE) or "").strip()
    return None if value.lower() in ("", "off", "none") else value


@lru_cache(maxsize=4)
def redis_cache(url):
    from django.core.cache.backends.redis import RedisCache

    options = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
    return RedisCache(url, {"KEY_PREFIX": "relay-api", "OPTIONS": options})


class TokenRateThrottle(UserRateThrottle):
    """Counted per API token (request.auth), never per user: each token has its own budget."""

    scope = "relay_api"

    def get_rate(self):
        return rate()

    def parse_rate(self, value):
        try:
            return super().parse_rate(value)
        except (ValueError, KeyError, IndexError):
            raise ImproperlyConfigured(f"RELAY_API_RATE: {value!r} is not '<requests>/<s|m|h|d>'") from None

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "pk", None) is None:
            return None  # not authenticated by token: refused before, never counted
        return self.cache_format % {"scope": self.scope, "ident": f"token-{token.pk}"}

    def allow_request(self, request, view):
        url = getattr(settings, "REDIS_URL", "")
        self.cache = redis_cache(url) if url else default_cache
        try:
            return super().allow_request(request, view)
        except redis.RedisError as exc:
            _warn(exc)
            self.cache = default_cache
            return super().allow_request(request, view)


def _warn(exc):
    global _last_warning
    if time.monotonic() - _last_warning > WARNING_INTERVAL:
        _last_warning = time.monotonic()
        logger.warning("API rate limit: Redis unavailable (%s); counting in this process", exc)
