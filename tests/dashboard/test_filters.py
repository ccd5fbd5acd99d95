"""The log's filters read from a query string, and the cursors of its pages."""

from datetime import UTC, datetime, timedelta

from django.http import QueryDict

from dashboard.filters import LogFilter
from dashboard.queries.cursors import decode_cursor, encode_cursor

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def parse(query):
    return LogFilter.parse(QueryDict(query))


def test_it_reads_every_filter():
    log_filter, problems = parse(
        "state=failed&type=track&event=Signed+Up&status=4xx&cause=http_400&source=3&user=ada"
        "&range=24h&since=2026-02-01T10:00&until=2026-02-02T10:00:00Z&q=ada@example.com"
    )
    assert problems == []
    assert log_filter == LogFilter(
        state="failed",
        type="track",
        event="Signed Up",
        status="4xx",
        cause="http_400",
        source=3,
        user="ada",
        range="24h",
        since=datetime(2026, 2, 1, 10, 0, tzinfo=UTC),
        until=datetime(2026, 2, 2, 10, 0, tzinfo=UTC),
        q="ada@example.com",
    )


def test_it_leaves_out_bad_values_and_names_them():
    log_filter, problems = parse("state=lost&type=fax&status=abc&source=x&since=yesterday&cause=a%20b&range=1y")
    assert log_filter == LogFilter()
    assert len(problems) == 7
    assert any(problem.startswith("state:") for problem in problems)


def test_it_round_trips_through_its_query_string():
    log_filter, _ = parse("state=failed&since=2026-02-01T10:00:00.250000&q=x")
    again, problems = parse(log_filter.query().lstrip("?"))
    assert (again, problems) == (log_filter, [])
    assert LogFilter.from_dict(log_filter.to_dict()) == log_filter


def test_query_changes_one_field_and_drops_empty_ones():
    log_filter = LogFilter(state="failed", type="track")
    assert log_filter.query(state=None) == "?type=track"
    assert log_filter.query(type="page") == "?state=failed&type=page"
    assert LogFilter().query() == "?"


def test_a_relative_range_resolves_against_now():
    log_filter = LogFilter(range="24h")
    assert log_filter.window(NOW) == (NOW - timedelta(hours=24), None)
    # An explicit since inside the range wins; one before it does not.
    assert LogFilter(range="1h", since=NOW - timedelta(minutes=10)).window(NOW)[0] == NOW - timedelta(minutes=10)
    assert LogFilter(range="1h", since=NOW - timedelta(days=2)).window(NOW)[0] == NOW - timedelta(hours=1)
    assert log_filter.resolved(NOW) == LogFilter(since=NOW - timedelta(hours=24))


def test_status_ranges():
    assert LogFilter(status="404").status_range() == (404, 405)
    assert LogFilter(status="5xx").status_range() == (500, 600)
    assert LogFilter(status="none").status_range() is None
    assert LogFilter().status_range() == ()


def test_it_describes_itself():
    assert LogFilter().describe() == "every call"
    text = LogFilter(state="failed", source=2, range="7d", q="ada").describe({2: "Website"})
    assert text == "state failed, source Website, last 7 days, matching 'ada'"


def test_a_cursor_keeps_the_microsecond_and_the_id():
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, 42)) == (moment, 42)
    for bad in ("", "abc", "12", "1.x", ".5", "9" * 40 + ".1"):
        assert decode_cursor(bad) is None


def test_has_warnings_is_read_kept_and_described():
    assert parse("warned=1")[0] == LogFilter(warned=True)
    for yes in ("1", "true", "on", "yes", "TRUE"):
        assert parse(f"warned={yes}") == (LogFilter(warned=True), [])
    for no in ("0", "false", "off", ""):
        assert parse(f"warned={no}") == (LogFilter(), [])
    assert parse("warned=maybe") == (LogFilter(), ["warned: 'maybe' is not 1 or 0"])
    log_filter = LogFilter(state="delivered", warned=True)
    assert log_filter.query() == "?state=delivered&warned=1"
    assert log_filter.query(warned=None) == "?state=delivered"
    assert LogFilter.from_dict(log_filter.to_dict()) == log_filter
    assert log_filter.describe() == "state delivered, has warnings"
    assert LogFilter(warned=True).is_active and not LogFilter(warned=False).is_active
