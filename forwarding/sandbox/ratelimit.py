"""Intercom's rate limit: a request budget per fixed window (10 seconds by default)."""

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix time the current window ends

    def headers(self):
        """The X-RateLimit-* headers Intercom sends on authenticated responses."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Counts requests in windows aligned to multiples of the window length since the epoch."""

    def __init__(self):
        self._lock = threading.Lock()
        self._window_start = None
        self._used = 0

    def hit(self, limit, window, now):
        """Count one request at `now` (Unix seconds) against `limit` per `window` seconds."""
        start = int(now // window * window)
        with self._lock:
            if start != self._window_start:
                self._window_start, self._used = start, 0
            self._used += 1
            used = self._used
        return RateLimitDecision(used <= limit, limit, max(limit - used, 0), start + window)

    def reset(self):
        with self._lock:
            self._window_start, self._used = None, 0
