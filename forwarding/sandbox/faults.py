"""Fault injection: random errors, slow answers, and a queue of failures to come."""

import random
import threading
from collections import deque
from dataclasses import dataclass

DROP = 0  # a queued "status" meaning: close the connection without answering (a network error)


@dataclass
class QueuedFailure:
    remaining: int
    status: int
    method: str | None = None  # only requests with this method (any when None)
    path: str | None = None  # only requests whose path starts with this (any when None)

    def applies(self, method, path):
        return (self.method is None or self.method == method) and (self.path is None or path.startswith(self.path))


class Faults:
    """Decides, request by request, whether the sandbox fails on purpose."""

    def __init__(self, config, seed=None):
        self.config = config
        self._random = random.Random(seed)
        self._queue = deque()
        self._lock = threading.Lock()

    def fail_next(self, count, status=503, method=None, path=None):
        """Make the next `count` matching requests answer `status` (DROP: no answer at all)."""
        count, status = int(count), int(status)
        if count < 1 or not (status == DROP or 400 <= status <= 599):
            raise ValueError("count must be >= 1 and status an HTTP error status or 0 (drop)")
        with self._lock:
            self._queue.append(QueuedFailure(count, status, method.upper() if method else None, path))

    def clear(self):
        with self._lock:
            self._queue.clear()

    @property
    def queued(self):
        """Pending queued failures, as dicts."""
        with self._lock:
            return [vars(failure).copy() for failure in self._queue]

    def failure_for(self, method, path):
        """The status to fail this request with (queued failures first, then error_rate), or None."""
        with self._lock:
            for failure in self._queue:
                if failure.applies(method, path):
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._queue.remove(failure)
                    return failure.status
            if self.config.error_rate and self._random.random() < self.config.error_rate:
                return self._random.choice(self.config.error_statuses)
        return None

    def is_slow(self):
        """Whether to hold this answer for slow_ms (probability slow_rate)."""
        with self._lock:
            return bool(self.config.slow_rate) and self._random.random() < self.config.slow_rate
