import time

import pytest
import requests

from forwarding.sandbox.testing import running_sandbox
from tests.sandbox.conftest import TOKEN, Api, error


def test_it_fails_the_next_requests_with_the_queued_status(api, sandbox):
    api.contact("u1")
    sandbox.fail_next(2, status=503)

    answers = [api.post("/events", {"event_name": "a", "created_at": n, "user_id": "u1"}) for n in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 202]
    assert error(answers[0]) == (503, "service_unavailable", "Service Unavailable")
    assert [e["created_at"] for e in sandbox.state.events] == [2]  # failed requests change nothing
    assert sandbox.counters["faults.error"] == 2


def test_it_fails_only_the_requests_a_queued_failure_matches(api, sandbox):
    api.contact("u1")
    sandbox.fail_next(1, status=500, method="POST", path="/events")

    assert api.get("/me").status_code == 200
    assert api.post("/events", {"event_name": "a", "created_at": 1, "user_id": "u1"}).status_code == 500
    assert api.post("/events", {"event_name": "a", "created_at": 1, "user_id": "u1"}).status_code == 202


def test_it_drops_the_connection_when_the_queued_status_is_0(api, sandbox):
    sandbox.fail_next(1, status=0)

    with pytest.raises(requests.ConnectionError):
        api.get("/me")

    assert api.get("/me").status_code == 200


def test_it_answers_errors_at_the_configured_rate():
    with running_sandbox(token=TOKEN, error_rate=0.5, seed=7) as sandbox:
        client = Api(sandbox)
        statuses = [client.get("/me").status_code for _ in range(200)]

        sandbox.configure(error_rate=0)
        assert client.get("/me").status_code == 200

    assert set(statuses) == {200, 500, 503}
    assert 60 < statuses.count(200) < 140


def test_it_adds_the_configured_latency(api, sandbox):
    sandbox.configure(latency_ms=200)

    started = time.monotonic()
    api.get("/me")

    assert time.monotonic() - started >= 0.2


def test_it_holds_a_slow_answer_past_the_client_timeout_after_doing_the_work(api, sandbox):
    api.contact("u1")
    sandbox.configure(slow_rate=1.0, slow_ms=2000)

    with pytest.raises(requests.Timeout):
        api.post("/events", {"event_name": "a", "created_at": 1, "user_id": "u1"}, timeout=0.3)

    # Intercom may carry out a request whose answer never arrives: the event is stored.
    assert len(sandbox.state.events) == 1
    sandbox.configure(slow_rate=0.0)
    assert api.get("/me").status_code == 200


def test_it_ends_slow_answers_at_once_when_stopped():
    with running_sandbox(token=TOKEN, slow_rate=1.0, slow_ms=60_000) as sandbox:
        client = Api(sandbox)
        with pytest.raises(requests.Timeout):
            client.get("/me", timeout=0.2)
        started = time.monotonic()
        sandbox.stop()

    assert time.monotonic() - started < 2


def test_it_refuses_connections_once_stopped(sandbox):
    client = Api(sandbox)
    assert client.get("/me").status_code == 200

    sandbox.stop()

    with pytest.raises(requests.ConnectionError):
        client.get("/me", timeout=2)
