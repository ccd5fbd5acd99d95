"""Timestamp parsing and clock-skew correction, as tables of examples and one property."""

import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from forwarding.ingestion import timestamps

UTC = dt.UTC
# The default of RELAY_CLOCK_SKEW_THRESHOLD.
THRESHOLD = dt.timedelta(minutes=5)


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
    assert timestamps.corrected(received, original, sent, THRESHOLD) == dt.datetime(2024, 6, 1, 11, 59, 55, tzinfo=UTC)
    assert timestamps.corrected(received, original, None, THRESHOLD) == original
    assert timestamps.corrected(received, None, sent, THRESHOLD) == received


@pytest.mark.parametrize("gap", [dt.timedelta(0), dt.timedelta(seconds=40.7), -dt.timedelta(minutes=4, seconds=59)])
def test_it_takes_a_gap_under_the_threshold_for_transit_and_moves_nothing(gap):
    # A request delayed on its way (an outage, a proxy queue) is not a wrong clock.
    received = dt.datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
    original = dt.datetime(2024, 6, 1, 11, 58, 10, 900000, tzinfo=UTC)
    assert timestamps.corrected(received, original, received - gap, THRESHOLD) == original


@pytest.mark.parametrize(
    "gap,shift",
    [
        (dt.timedelta(minutes=5), dt.timedelta(minutes=5)),  # at the threshold: corrected
        (dt.timedelta(hours=1, seconds=0.4), dt.timedelta(hours=1)),
        (dt.timedelta(hours=1, seconds=0.5), dt.timedelta(hours=1, seconds=1)),
        (-dt.timedelta(minutes=10, seconds=2.6), -dt.timedelta(minutes=10, seconds=3)),  # the clock is behind
    ],
)
def test_it_moves_calls_by_the_skew_in_whole_seconds_from_the_threshold_on(gap, shift):
    received = dt.datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
    original = dt.datetime(2024, 6, 1, 13, 0, 0, 900000, tzinfo=UTC)
    assert timestamps.clock_skew(received, received + gap, THRESHOLD) == shift
    assert timestamps.corrected(received, original, received + gap, THRESHOLD) == original - shift


def test_a_threshold_of_zero_corrects_every_gap():
    received = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    original = dt.datetime(2024, 6, 1, 11, 59, 0, tzinfo=UTC)
    assert timestamps.corrected(received, original, received + dt.timedelta(seconds=2.2), dt.timedelta(0)) == (
        original - dt.timedelta(seconds=2)
    )


@given(
    first=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)),
    apart=st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(seconds=3)),
    gap=st.timedeltas(min_value=-dt.timedelta(days=400), max_value=dt.timedelta(days=400)),
    threshold=st.sampled_from([dt.timedelta(0), THRESHOLD]),
)
def test_two_calls_in_different_seconds_stay_in_different_seconds(first, apart, gap, threshold):
    # One batch: one sentAt, one arrival, so one shift for every call in it.
    second = first + apart
    assume(whole_second(first) != whole_second(second))
    received = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    one, two = (timestamps.corrected(received, t, received + gap, threshold) for t in (first, second))
    assert whole_second(one) < whole_second(two)
    assert whole_second(two) - whole_second(one) == whole_second(second) - whole_second(first)


def whole_second(moment):
    return moment.replace(microsecond=0)


def test_it_refuses_a_correction_out_of_range():
    received = dt.datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        timestamps.corrected(
            received, dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 1, 1, tzinfo=UTC), dt.timedelta(0)
        )


def test_it_writes_iso_strings_as_segment_does():
    value = dt.datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timestamps.to_iso(value) == "2024-01-02T03:04:05.123Z"
