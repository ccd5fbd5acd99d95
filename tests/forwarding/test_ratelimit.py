"""The shared limiter: every request takes one from the window in the database; what Intercom's
headers say is written back at a new window, every tenth answer, and at each answer once low."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from forwarding import ratelimit
from forwarding.intercom import Response
from forwarding.models import RateLimitWindow

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(ratelimit, "_last_sync", {"reset_at": None, "answers": 0})


def answer(remaining, reset_at, limit=100):
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset_at.timestamp())),
    }
    return Response("POST", "/events", {}, 202, None, headers)


def window():
    return RateLimitWindow.objects.get(name=ratelimit.NAME)


def next_reset(seconds):
    return datetime.fromtimestamp(int(timezone.now().timestamp()) + seconds, UTC)


def test_requests_take_from_the_window_and_wait_when_it_is_spent():
    reset_at = next_reset(10)
    ratelimit.observe(answer(2, reset_at))
    assert [ratelimit.wait_seconds() for _ in range(2)] == [0, 0]
    assert 0 < ratelimit.wait_seconds() <= 10
    assert window().remaining == 0


def test_others_use_of_the_token_is_learnt_within_ten_answers():
    reset_at = next_reset(10)
    ratelimit.observe(answer(90, reset_at))
    assert window().remaining == 90
    for taken in range(1, 10):
        ratelimit.wait_seconds()
        ratelimit.observe(answer(60 - taken, reset_at))  # another sender spent 30 meanwhile
    assert window().remaining == 90 - 9  # not yet written back: only this relay's takes
    ratelimit.wait_seconds()
    ratelimit.observe(answer(50, reset_at))
    assert window().remaining == 50


def test_a_new_window_and_a_low_count_are_written_at_once():
    first = next_reset(10)
    ratelimit.observe(answer(90, first))
    second = first + timedelta(seconds=10)
    ratelimit.observe(answer(99, second))
    assert (window().remaining, window().reset_at) == (99, second)
    ratelimit.observe(answer(15, second))  # below a fifth of the limit
    assert window().remaining == 15
    ratelimit.observe(answer(14, second))
    assert window().remaining == 14
