import time

import requests

from forwarding.sandbox.ratelimit import RateLimiter
from tests.sandbox.conftest import error


def test_it_sends_rate_limit_headers_on_authenticated_answers(api, sandbox):
    sandbox.configure(rate_limit=100)

    first, second = api.get("/me"), api.get("/contacts/find_by_external_id/nobody")
    unauthenticated = requests.get(sandbox.url + "/me", timeout=5)

    assert first.headers["X-RateLimit-Limit"] == "100"
    assert int(first.headers["X-RateLimit-Remaining"]) - int(second.headers["X-RateLimit-Remaining"]) == 1
    reset = int(first.headers["X-RateLimit-Reset"])
    assert reset % 10 == 0
    assert time.time() < reset <= time.time() + 10
    assert "X-RateLimit-Limit" not in unauthenticated.headers


def test_it_answers_429_beyond_the_limit_until_the_window_ends(api, sandbox):
    sandbox.configure(rate_limit=3, rate_limit_window=1)
    while time.time() % 1 > 0.5:  # room for four requests in one window
        time.sleep(0.05)

    answers = [api.get("/me") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert error(answers[3]) == (429, "rate_limit_exceeded", "Exceeded rate limit of 3 in 1_seconds")
    assert answers[3].headers["X-RateLimit-Remaining"] == "0"
    reset = int(answers[3].headers["X-RateLimit-Reset"])
    time.sleep(max(reset - time.time(), 0) + 0.05)
    assert api.get("/me").status_code == 200


def test_it_words_the_429_as_intercom_does_for_10_second_windows(api, sandbox):
    sandbox.configure(rate_limit=1)

    api.get("/me")
    response = api.get("/me")

    if response.status_code == 200:  # the first request ended a window: try once more
        response = api.get("/me")
    assert error(response) == (429, "rate_limit_exceeded", "Exceeded rate limit of 1 in 10_seconds")


def test_it_sends_no_rate_limit_headers_when_the_limit_is_off(api):
    response = api.get("/me")

    assert "X-RateLimit-Limit" not in response.headers


def test_it_aligns_windows_to_the_window_length():
    limiter = RateLimiter()

    first = limiter.hit(2, 10, 1000.5)
    second = limiter.hit(2, 10, 1009.9)
    third = limiter.hit(2, 10, 1009.99)
    next_window = limiter.hit(2, 10, 1010.0)

    assert (first.allowed, first.remaining, first.reset) == (True, 1, 1010)
    assert (second.allowed, second.remaining) == (True, 0)
    assert (third.allowed, third.remaining) == (False, 0)
    assert (next_window.allowed, next_window.remaining, next_window.reset) == (True, 1, 1020)
