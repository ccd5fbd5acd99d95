"""Fixtures: a sandbox on 127.0.0.1 per test, and a small client that speaks to it as Intercom's
clients do. Nothing here needs the database."""

import pytest
import requests

from forwarding.sandbox.testing import running_sandbox

TOKEN = "test-sandbox-token"


class Api:
    """requests against the sandbox with a well-behaved client's headers."""

    def __init__(self, sandbox):
        self.url = sandbox.url
        self.session = requests.Session()
        self.session.headers.update(sandbox.headers())

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def contact(self, external_id, **fields):
        """Create a user contact; returns its JSON."""
        response = self.post("/contacts", {"role": "user", "external_id": external_id, **fields})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def sandbox():
    with running_sandbox(token=TOKEN) as running:
        yield running
        assert running.internal_errors == []


@pytest.fixture
def api(sandbox):
    client = Api(sandbox)
    yield client
    client.session.close()


def error(response):
    """(status, first error code, first error message) of an Intercom error answer."""
    body = response.json()
    assert body["type"] == "error.list"
    assert body["request_id"]
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]
