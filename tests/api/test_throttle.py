"""The per-token rate limit (RELAY_API_RATE): 429 JSON with Retry-After once a token has used its
budget; another token, even the same user's, has its own."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import envthrottle
from dashboard.api import throttles
from tests.api.conftest import Api, error_of, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_a_minute(settings):
    settings.RELAY_API_RATE = "2/min"


def test_a_token_over_its_rate_gets_429_with_retry_after(viewer, two_a_minute):
    api = Api(token_for(viewer))
    assert [api.get("status/").status_code for _ in range(2)] == [200, 200]
    response = api.get("status/")
    assert error_of(response) == (429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_each_token_has_its_own_budget(viewer, two_a_minute):
    first, second = Api(token_for(viewer, "one")), Api(token_for(viewer, "two"))
    for _ in range(2):
        first.get("status/")
    assert first.get("status/").status_code == 429
    assert second.get("status/").status_code == 200


def test_actions_count_too(operator, two_a_minute):
    api = Api(token_for(operator))
    statuses = [api.post("bulk-resends/", {"dry_run": True}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_refused_requests_are_not_counted(viewer, two_a_minute):
    api = Api(token_for(viewer))
    for _ in range(3):
        assert api.post("forget-user/", {"user_id": "ann"}).status_code == 403  # refused before counting
    assert api.get("status/").status_code == 200


def test_the_default_is_600_a_minute_and_off_turns_it_off(viewer, settings):
    del settings.RELAY_API_RATE
    assert throttles.rate() == "600/min"
    assert throttles.TokenRateThrottle().num_requests == 600
    settings.RELAY_API_RATE = "off"
    api = Api(token_for(viewer))
    assert all(api.get("status/").status_code == 200 for _ in range(5))


def test_a_malformed_rate_is_a_configuration_error(settings):
    settings.RELAY_API_RATE = "many"
    with pytest.raises(ImproperlyConfigured, match="RELAY_API_RATE"):
        throttles.TokenRateThrottle()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("600/min", "600/min"), (" 20/s ", "20/s"), ("5/hour", "5/hour"), ("off", "off"), ("", "off")],
)
def test_the_rate_is_read_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("RELAY_API_RATE", text)
    assert envthrottle("RELAY_API_RATE", "600/min") == expected


@pytest.mark.parametrize("text", ["600", "lots/min", "0/min", "10/fortnight", "10/10s"])
def test_a_rate_it_cannot_read_stops_the_start(monkeypatch, text):
    monkeypatch.setenv("RELAY_API_RATE", text)
    with pytest.raises(ImproperlyConfigured, match="RELAY_API_RATE"):
        envthrottle("RELAY_API_RATE", "600/min")
