"""The delivery log's filters: read from a query string (or the resend command's options), applied
by dashboard.queries, and stored with a bulk resend so that it resends exactly what was counted."""

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from forwarding.models import CallType, State

# Relative time ranges offered in the log's sidebar (resolved against "now" on every request).
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGE_LABELS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
# An exact status ("404"), a class ("5xx") or "none" (no HTTP answer recorded). ASCII digits
# only: int() takes "٣" but not "²", and str.isdigit() takes both.
STATUS_PATTERN = re.compile(r"[1-5][0-9][0-9]|[1-5]xx|none")
# A row id: ASCII digits that fit the database's 64-bit integer (a longer one matches nothing). A
# source's id is 32-bit on PostgreSQL: past that, Django knows it matches nothing (queries.log.sql_of).
ID_PATTERN = re.compile(r"[0-9]{1,18}")
CAUSE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,50}")
MAX_TEXT = 255
# ?warned=1: "has warnings" (the last attempt dropped, cut or renamed something).
YES = {"1", "true", "yes", "on"}
NO = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class LogFilter:
    state: str = ""
    type: str = ""
    # An event name as the registry knows it (case-insensitive, the page event name included).
    event: str = ""
    status: str = ""
    cause: str = ""
    source: int | None = None
    # The user a delivery is forwarded for (anonymous calls attributed to them included).
    user: str = ""
    range: str = ""
    since: datetime | None = None
    until: datetime | None = None
    # Exact userId, anonymousId, messageId or email.
    q: str = ""
    # Only deliveries whose last attempt had warnings (something dropped, cut or renamed).
    warned: bool = False

    @classmethod
    def parse(cls, params):
        """(filter, problems) from a QueryDict or dict of strings; a bad value is left out and named."""
        values, problems = {}, []

        def text(name, limit=MAX_TEXT):
            value = (params.get(name) or "").strip()
            if len(value) > limit:
                problems.append(f"{name}: longer than {limit} characters")
                return ""
            if "\x00" in value:
                # PostgreSQL refuses NUL in text; no stored value holds one.
                problems.append(f"{name}: contains a NUL character")
                return ""
            return value

        def choice(name, allowed):
            value = text(name)
            if value and value not in allowed:
                problems.append(f"{name}: unknown value {value!r}")
                return ""
            return value

        values["state"] = choice("state", State.values)
        values["type"] = choice("type", CallType.values)
        values["range"] = choice("range", RANGES)
        values["event"] = text("event")
        values["user"] = text("user")
        values["q"] = text("q")
        status = text("status").lower()
        if status and not STATUS_PATTERN.fullmatch(status):
            problems.append(f"status: {status!r} is not an HTTP status, a class such as 5xx, or none")
            status = ""
        values["status"] = status
        cause = text("cause", 50)
        if cause and not CAUSE_PATTERN.fullmatch(cause):
            problems.append(f"cause: {cause!r} is not an error cause")
            cause = ""
        values["cause"] = cause
        warned = text("warned").lower()
        if warned and warned not in YES | NO:
            problems.append(f"warned: {warned!r} is not 1 or 0")
        values["warned"] = warned in YES
        source = text("source")
        if source:
            if ID_PATTERN.fullmatch(source):
                values["source"] = int(source)
            else:
                problems.append(f"source: {source!r} is not a source id")
        for name in ("since", "until"):
            raw = text(name)
            if raw:
                moment = _parse_moment(raw)
                if moment is None:
                    problems.append(f"{name}: {raw!r} is not a date and time (YYYY-MM-DDTHH:MM)")
                values[name] = moment
        return cls(**values), problems

    def params(self):
        """The non-empty fields as query-string values."""
        out = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or value == "" or value is False:
                continue
            if value is True:
                out[field.name] = "1"
            else:
                out[field.name] = _format_moment(value) if isinstance(value, datetime) else str(value)
        return out

    def query(self, **changes):
        """'?…' for this filter with some fields changed (None, "" or False removes one)."""
        params = replace(self, **changes).params()
        return "?" + urlencode(params) if params else "?"

    def to_dict(self):
        return {name: value for name, value in self.params().items()}

    @classmethod
    def from_dict(cls, data):
        return cls.parse(data)[0]

    @property
    def is_active(self):
        return bool(self.params())

    def window(self, now=None):
        """(since, until): the explicit bounds, the relative range resolved against now."""
        since = self.since
        if self.range:
            start = (now or timezone.now()) - RANGES[self.range]
            since = max(since, start) if since else start
        return since, self.until

    def resolved(self, now=None):
        """The same filter with its relative range turned into a fixed `since` (for a bulk resend)."""
        since, until = self.window(now)
        return replace(self, range="", since=since, until=until)

    def status_range(self):
        """(low, high) bounds of last_status, None for "none", or () when not filtered."""
        if not self.status:
            return ()
        if self.status == "none":
            return None
        if self.status.endswith("xx"):
            low = int(self.status[0]) * 100
            return low, low + 100
        return int(self.status), int(self.status) + 1

    def describe(self, source_names=None):
        """A short human description, e.g. "state failed, type track, last 24 hours"."""
        parts = []
        for name in ("state", "type", "event", "status", "cause", "user"):
            value = getattr(self, name)
            if value:
                parts.append(f"{'HTTP status' if name == 'status' else name} {value}")
        if self.warned:
            parts.append("has warnings")
        if self.source is not None:
            label = (source_names or {}).get(self.source, f"#{self.source}")
            parts.append(f"source {label}")
        if self.range:
            parts.append(RANGE_LABELS[self.range].lower())
        if self.since:
            parts.append(f"since {_format_moment(self.since, ' ')}")
        if self.until:
            parts.append(f"until {_format_moment(self.until, ' ')}")
        if self.q:
            parts.append(f"matching {self.q!r}")
        return ", ".join(parts) or "every call"


def _parse_moment(raw):
    """An aware datetime (UTC when no offset is given) from ISO text, or None."""
    try:
        moment = parse_datetime(raw.replace(" ", "T", 1) if "T" not in raw else raw)
        if moment is None:
            return None
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        # 9999-12-31T23:59-23:59 is past the last UTC moment Python has: OverflowError.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _format_moment(moment, sep="T"):
    moment = moment.astimezone(UTC)
    text = moment.isoformat(sep=sep, timespec="microseconds" if moment.microsecond else "seconds")
    return text.removesuffix("+00:00")
