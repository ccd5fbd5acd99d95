"""The shared limiter: a worker takes requests from the window in the database ten at a time
(one at a time once fewer are left) and gives back what its task did not send; what Intercom's
headers say is written back at a new window, every tenth answer, and at each answer once low."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding.delivery import limiter
from forwarding.intercom import Response
from forwarding.models import RateLimitWindow

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(limiter, "_last_sync", {"reset_at": None, "answers": 0, "headers": True})
    monkeypatch.setattr(limiter, "_held", {"tokens": 0, "reset_at": None, "until": 0.0})


def answer(remaining, reset_at, limit=100):
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset_at.timestamp())),
    }
    return Response("POST", "/events", {}, 202, None, headers)


def window():
    return RateLimitWindow.objects.get(name=limiter.NAME)


def next_reset(seconds):
    return datetime.fromtimestamp(int(timezone.now().timestamp()) + seconds, UTC)


def test_requests_take_from_the_window_and_wait_when_it_is_spent():
    reset_at = next_reset(10)
    limiter.observe(answer(2, reset_at))
    assert [limiter.wait_seconds() for _ in range(2)] == [0, 0]
    assert 0 < limiter.wait_seconds() <= 10
    assert window().remaining == 0


def test_others_use_of_the_token_is_learnt_within_ten_answers():
    reset_at = next_reset(10)
    limiter.observe(answer(90, reset_at))
    assert window().remaining == 90
    for taken in range(1, 10):
        limiter.wait_seconds()
        limiter.observe(answer(60 - taken, reset_at))  # another sender spent 30 meanwhile
    assert window().remaining == 90 - 9  # not yet written back: only this relay's takes
    limiter.wait_seconds()
    limiter.observe(answer(50, reset_at))
    assert window().remaining == 50


def test_a_new_window_and_a_low_count_are_written_at_once():
    first = next_reset(10)
    limiter.observe(answer(90, first))
    second = first + timedelta(seconds=10)
    limiter.observe(answer(99, second))
    assert (window().remaining, window().reset_at) == (99, second)
    limiter.observe(answer(15, second))  # below a fifth of the limit
    assert window().remaining == 15
    limiter.observe(answer(14, second))
    assert window().remaining == 14


def test_from_a_large_window_requests_are_taken_ten_at_a_time_and_the_unsent_given_back():
    reset_at = next_reset(10)
    limiter.observe(answer(950, reset_at, limit=1000))
    with CaptureQueriesContext(connection) as queries:
        assert [limiter.wait_seconds() for _ in range(3)] == [0, 0, 0]
    assert len(queries) == 1  # one UPDATE takes the block and answers its window's reset
    assert window().remaining == 940  # one block for the three
    limiter.give_back()  # the task ends: seven were not sent
    assert window().remaining == 947
    assert limiter.wait_seconds() == 0
    assert window().remaining == 937  # nothing held after giving back: a new block


def test_a_window_running_low_is_taken_one_at_a_time():
    reset_at = next_reset(10)
    limiter.observe(answer(209, reset_at, limit=1000))  # under a fifth of the limit plus a block
    assert [limiter.wait_seconds() for _ in range(2)] == [0, 0]
    assert window().remaining == 207


def test_a_small_window_is_taken_one_at_a_time():
    reset_at = next_reset(10)
    limiter.observe(answer(150, reset_at, limit=150))  # a small limit: the count follows each answer
    assert [limiter.wait_seconds() for _ in range(2)] == [0, 0]
    assert window().remaining == 148


def test_a_block_held_from_a_window_that_has_reset_is_not_spent():
    reset_at = next_reset(10)
    limiter.observe(answer(500, reset_at, limit=1000))
    limiter.wait_seconds()
    RateLimitWindow.objects.filter(name=limiter.NAME).update(remaining=0)
    later = reset_at + timedelta(seconds=1)  # the window has reset; its block is worth nothing
    assert limiter.wait_seconds(later) == 0  # one request, to learn the new window
    limiter.observe(answer(0, reset_at + timedelta(seconds=10)))
    assert limiter.wait_seconds(later) > 0  # the new window is spent: wait for it


def test_when_answers_stop_carrying_headers_requests_go_fifty_at_a_time():
    reset_at = next_reset(10)
    limiter.observe(answer(50, reset_at))
    limiter.observe(Response("POST", "/events", {}, 202, None, {}))  # no X-RateLimit-* headers
    later = reset_at + timedelta(seconds=1)
    with CaptureQueriesContext(connection) as queries:
        assert [limiter.wait_seconds(later) for _ in range(limiter.UNKNOWN_BLOCK)] == [0] * limiter.UNKNOWN_BLOCK
    assert len(queries) == 3  # two UPDATEs that take nothing and a SELECT, for the fifty


def test_a_429_drops_the_block_held():
    reset_at = next_reset(10)
    limiter.observe(answer(500, reset_at, limit=1000))
    limiter.wait_seconds()
    RateLimitWindow.objects.filter(name=limiter.NAME).update(remaining=0)  # others spent the rest
    limiter.observe(Response("POST", "/events", {}, 429, None, {}))
    assert limiter.wait_seconds() > 0


def test_when_a_window_ends_one_request_learns_the_next_while_the_others_wait():
    reset_at = next_reset(10)
    limiter.observe(answer(0, reset_at))
    later = reset_at + timedelta(seconds=0.1)
    assert limiter.wait_seconds(later) == 0  # the probe
    assert limiter.wait_seconds(later) == limiter.PROBE_WAIT_SECONDS  # everyone else waits for it
    limiter.observe(answer(99, reset_at + timedelta(seconds=10)))  # its answer tells the new window
    assert limiter.wait_seconds(later) == 0
    assert window().remaining == 98


def test_a_probe_that_is_not_answered_is_taken_over():
    reset_at = next_reset(10)
    limiter.observe(answer(0, reset_at))
    later = reset_at + timedelta(seconds=0.1)
    assert limiter.wait_seconds(later) == 0  # the probe, lost on its way
    assert limiter.wait_seconds(later + timedelta(seconds=0.2)) == limiter.PROBE_WAIT_SECONDS
    assert limiter.wait_seconds(later + limiter.PROBE_SECONDS + timedelta(seconds=0.1)) == 0


def test_an_answer_without_headers_lifts_the_ended_window_for_every_worker():
    ended = timezone.now() - timedelta(seconds=1)
    RateLimitWindow.objects.create(name=limiter.NAME, remaining=0, limit=100, reset_at=ended)
    assert limiter.wait_seconds() == 0  # the probe
    limiter.observe(Response("POST", "/events", {}, 202, None, {}))  # no headers: the limit is gone
    assert window().remaining is None
    limiter._last_sync["headers"] = True  # another worker, which has not seen such an answer
    assert limiter.wait_seconds() == 0


def test_a_network_error_says_nothing_about_the_window():
    reset_at = next_reset(10)
    limiter.observe(answer(50, reset_at))
    limiter.observe(Response("POST", "/events", {}, None, None, {}, error="timeout: ReadTimeoutError"))
    assert limiter._last_sync["headers"] and window().remaining == 50
