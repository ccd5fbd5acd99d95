"""The retry policy: which answers are retried, waited out, held or failed."""

from datetime import UTC, datetime

import pytest

from forwarding.delivery import policy
from forwarding.intercom import Response
from forwarding.models import Outcome


def answer(status, code="", message="", headers=None, error=""):
    body = {"type": "error.list", "errors": [{"code": code, "message": message}]} if status else None
    return Response("POST", "/events", {}, status, body, headers or {}, 5, error)


@pytest.mark.parametrize(
    ("response", "outcome", "cause"),
    [
        (answer(None, error="timeout: ReadTimeout"), Outcome.RETRY, "timeout"),
        (answer(None, error="network: ConnectionError"), Outcome.RETRY, "network"),
        (answer(408), Outcome.RETRY, "http_408"),
        (answer(500, "server_error"), Outcome.RETRY, "http_500"),
        (answer(502), Outcome.RETRY, "http_502"),
        (answer(503, "service_unavailable"), Outcome.RETRY, "http_503"),
        (answer(504), Outcome.RETRY, "http_504"),
        (
            answer(429, "rate_limit_exceeded", "Exceeded rate limit of 167 in 10_seconds"),
            Outcome.RATE_LIMITED,
            "rate_limited",
        ),
        (answer(401, "unauthorized", "Access Token Invalid"), Outcome.AUTH, "http_401"),
        (answer(403, "forbidden"), Outcome.AUTH, "http_403"),
        (answer(400, "parameter_invalid", "bad"), Outcome.FAILED, "http_400"),
        (answer(422, "unprocessable_entity", "invalid"), Outcome.FAILED, "http_422"),
        (answer(422, "422", "Cannot have more than 120 active event names"), Outcome.HELD, "event_name_cap"),
    ],
    ids=lambda value: getattr(value, "status", None) or str(value),
)
def test_it_judges_each_answer(response, outcome, cause):
    verdict = policy.judge(response)
    assert (verdict.outcome, verdict.cause) == (outcome, cause)


def test_it_waits_until_the_rate_limit_resets():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    response = answer(429, "rate_limit_exceeded", headers={"X-RateLimit-Reset": str(int(now.timestamp()) + 7)})
    assert policy.judge(response, now=now).wait_seconds == 7


def test_it_falls_back_to_a_window_when_no_reset_header_came():
    assert policy.rate_limit_wait(answer(429)) == policy.DEFAULT_RATE_LIMIT_WAIT


def test_it_spreads_retries_with_jitter_and_stops_when_the_schedule_is_used_up(settings):
    settings.RELAY_RETRY_SCHEDULE = [10, 60]
    delays = [policy.retry_delay(1) for _ in range(200)]
    assert 8 <= min(delays) < max(delays) <= 12
    assert 48 <= policy.retry_delay(2) <= 72
    assert policy.retry_delay(3) is None
