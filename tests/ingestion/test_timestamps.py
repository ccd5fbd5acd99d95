"""Timestamp parsing and Segment's skew correction, as tables of examples."""

import datetime as dt

import pytest

from forwarding.ingestion import timestamps

UTC = dt.UTC


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123Z", dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456+00:00", dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T05:04:05.5+02:00", dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2024-01-01T22:04:05-05:00", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789Z", dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no offset: UTC
        ("2024-01-02", dt.datetime(2024, 1, 2, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_it_parses_iso_8601(text, expected):
    assert timestamps.parse(text) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-02T25:00:00Z", 1704164645, ["x"]])
def test_it_refuses_what_is_not_iso_8601(bad):
    with pytest.raises(ValueError):
        timestamps.parse(bad)


def test_it_corrects_clock_skew():
    received = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    sent = dt.datetime(2024, 6, 1, 13, 0, 5, tzinfo=UTC)  # the device is an hour and 5 s ahead
    original = dt.datetime(2024, 6, 1, 13, 0, 0, tzinfo=UTC)
    assert timestamps.corrected(received, original, sent) == dt.datetime(2024, 6, 1, 11, 59, 55, tzinfo=UTC)
    assert timestamps.corrected(received, original, None) == original
    assert timestamps.corrected(received, None, sent) == received


def test_it_refuses_a_correction_out_of_range():
    received = dt.datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        timestamps.corrected(received, dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 1, 1, tzinfo=UTC))


def test_it_writes_iso_strings_as_segment_does():
    value = dt.datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timestamps.to_iso(value) == "2024-01-02T03:04:05.123Z"
