"""The sandbox's runtime settings: tokens, limits, rate limiting and fault injection."""

import threading
from dataclasses import dataclass, fields

DEFAULT_TOKEN = "sandbox-token"


def _rate(value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _count(minimum):
    def convert(value):
        if isinstance(value, bool) or int(value) != float(value) or int(value) < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return int(value)

    return convert


def _optional(convert):
    return lambda value: None if value is None else convert(value)


def _tokens(value):
    tokens = (value,) if isinstance(value, str) else tuple(value)
    if not tokens or not all(isinstance(t, str) and t for t in tokens):
        raise ValueError("must be one or more non-empty strings")
    return tokens


def _statuses(value):
    statuses = tuple(int(s) for s in ((value,) if isinstance(value, int | str) else value))
    if not statuses or not all(400 <= s <= 599 for s in statuses):
        raise ValueError("must be HTTP error statuses (400-599)")
    return statuses


def _flag(value):
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _seconds(value):
    value = float(value)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


CONVERTERS = {
    "tokens": _tokens,
    "refuse_token": _flag,
    "rate_limit": _optional(_count(1)),
    "rate_limit_window": _count(1),
    "error_rate": _rate,
    "error_statuses": _statuses,
    "latency_ms": _count(0),
    "slow_rate": _rate,
    "slow_ms": _count(0),
    "event_name_limit": _count(0),
    "data_attribute_limit": _count(0),
    "search_lag_seconds": _seconds,
    "validate": _flag,
    "request_log_limit": _count(1),
}


@dataclass
class SandboxConfig:
    """Everything about the sandbox that tests and operators may change while it runs."""

    tokens: tuple = (DEFAULT_TOKEN,)  # accepted bearer tokens
    refuse_token: bool = False  # answer 401 to every token (a revoked token), until set back
    rate_limit: int | None = None  # requests per window; None: not enforced, no X-RateLimit headers
    rate_limit_window: int = 10  # seconds; Intercom enforces its per-minute limit in 10 s windows
    error_rate: float = 0.0  # probability of answering one of error_statuses instead
    error_statuses: tuple = (500, 503)
    latency_ms: int = 0  # added to every Intercom API request
    slow_rate: float = 0.0  # probability of holding a processed answer for slow_ms
    slow_ms: int = 30_000  # longer than any sensible client timeout
    event_name_limit: int = 120  # Intercom's active event-name cap
    data_attribute_limit: int = 250  # Intercom's custom data attribute cap per workspace
    search_lag_seconds: float = 0.0  # contacts younger than this are missing from search results
    validate: bool = True  # check requests against the OpenAPI description
    request_log_limit: int = 10_000  # request log entries kept (oldest dropped)

    def __post_init__(self):
        self._lock = threading.Lock()

    def update(self, **changes):
        """Apply changes after checking every one; ValueError names the first bad setting."""
        converted = {}
        for name, value in changes.items():
            if name not in CONVERTERS:
                raise ValueError(f"unknown sandbox setting {name!r}")
            try:
                converted[name] = CONVERTERS[name](value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        with self._lock:
            for name, value in converted.items():
                setattr(self, name, value)
        return self

    def as_dict(self):
        """The settings as JSON-ready data; tokens are counted, never shown."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tokens"}
        data["error_statuses"] = list(self.error_statuses)
        data["token_count"] = len(self.tokens)
        return data
