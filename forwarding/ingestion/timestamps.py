"""ISO-8601 parsing and Segment's clock-skew correction."""

import datetime as dt

from django.utils.dateparse import parse_datetime


def parse(value):
    """An aware datetime from an ISO-8601 string (no offset means UTC); None when absent.

    Raises ValueError for anything else (a number, an unparseable string).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r:.100} is not an ISO-8601 string")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{value[:100]!r} is not an ISO-8601 date-time")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        # In UTC now: 0001-01-01T00:00+01:00 has no UTC form, and storing or printing it would fail later.
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{value[:100]!r} falls outside the representable dates") from None


def corrected(received_at, original_timestamp, sent_at):
    """The call's timestamp: receivedAt - (sentAt - originalTimestamp), as Segment computes it.

    The difference between sentAt and receivedAt is the device's clock skew; without both
    originalTimestamp and sentAt there is nothing to correct.
    """
    if original_timestamp is not None and sent_at is not None:
        try:
            return received_at - (sent_at - original_timestamp)
        except OverflowError:
            raise ValueError("timestamp correction falls outside the representable dates") from None
    return original_timestamp or received_at


def to_iso(value):
    """The ISO-8601 form written into stored payloads: UTC, milliseconds, `Z` (as Segment writes them)."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
