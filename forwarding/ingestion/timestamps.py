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


def corrected(received_at, original_timestamp, sent_at, threshold):
    """The call's timestamp: originalTimestamp moved by the device's clock skew, when it has one.

    Segment computes receivedAt - (sentAt - originalTimestamp), taking any gap between sentAt and
    receivedAt for skew. Here a gap under `threshold` (a timedelta) is transit, not skew: a request
    delayed on its way must not move the calls it carries. Without originalTimestamp the arrival
    time stands in; without sentAt there is nothing to correct.
    """
    if original_timestamp is None:
        return received_at
    if sent_at is None:
        return original_timestamp
    try:
        return original_timestamp - clock_skew(received_at, sent_at, threshold)
    except OverflowError:
        raise ValueError("timestamp correction falls outside the representable dates") from None


def replayed(message):
    """Whether a message was already taken by a Segment-compatible server and is sent again (an
    archive, a warehouse export): it carries `timestamp`, `originalTimestamp` and its own `sentAt`.
    Clients send `timestamp` or `originalTimestamp` (with `sentAt` on the message or the batch); a
    server writes all three, `timestamp` already corrected. A replay keeps that time: its `sentAt`
    is from long ago, and correcting by it would move the call to the replay's day."""
    return all(message.get(key) not in (None, "") for key in ("timestamp", "originalTimestamp", "sentAt"))


def clock_skew(received_at, sent_at, threshold):
    """How far ahead the device's clock is (sentAt - receivedAt), in whole seconds; zero under `threshold`.

    Whole seconds: Intercom keeps one event per user, name and second, and only a shift by whole
    seconds keeps calls that were in different seconds in different seconds (10.9 s and 11.1 s
    moved by 0.2 s would both land in second 11).
    """
    gap = sent_at - received_at
    if abs(gap) < threshold:
        return dt.timedelta(0)
    microseconds = (gap.days * 86_400 + gap.seconds) * 1_000_000 + gap.microseconds
    return dt.timedelta(seconds=(microseconds + 500_000) // 1_000_000)


def to_iso(value):
    """The ISO-8601 form written into stored payloads: UTC, milliseconds, `Z` (as Segment writes them)."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
