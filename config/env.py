"""Small strict helpers that read settings from environment variables."""

import os
import re

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def envstr(name, default=""):
    """A string; `NAME_FILE` (a path) is read when `NAME` is unset."""
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return default


def envbool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def envint(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def envlist(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(name, text):
    """Seconds from '90', '90s', '10m', '2h' or '7d'."""
    text = text.strip().lower()
    unit = UNITS.get(text[-1:], None)
    digits = text[:-1] if unit else text
    try:
        number = int(digits)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: {text!r} is not a duration like 10s, 5m, 2h or 7d") from None
    if number < 0:
        raise ImproperlyConfigured(f"{name}: {text!r} must not be negative")
    return number * (unit or 1)


def envduration(name, default):
    """A duration in seconds (see `parse_duration`)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return parse_duration(name, default)
    return parse_duration(name, value)


def envdurations(name, default):
    """A comma-separated list of durations in seconds."""
    value = os.environ.get(name) or default
    return [parse_duration(name, part) for part in value.split(",") if part.strip()]


RATE_OFF = {"", "0", "off", "none", "false"}


def envrate(name, default):
    """(requests, seconds) from "2000/10s", "100/m" or "50/30"; None for "off" or "0"."""
    value = os.environ.get(name, default).strip()
    if value.lower() in RATE_OFF:
        return None
    count, slash, period = value.partition("/")
    period = period.strip()
    if not slash or not count.strip().isdigit() or not period:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 2000/10s (or off)")
    seconds = parse_duration(name, period if period[0].isdigit() else f"1{period}")
    if int(count) < 1 or seconds < 1:
        raise ImproperlyConfigured(f"{name}={value!r}: the count and the period must be at least 1")
    return int(count), seconds


THROTTLE_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")


def envthrottle(name, default):
    """A rate in Django REST framework's form ("600/min", "20/s"), or "off"."""
    value = os.environ.get(name, default).strip()
    if value.lower() in RATE_OFF:
        return "off"
    if not THROTTLE_RATE.fullmatch(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 600/min (or off)")
    return value
