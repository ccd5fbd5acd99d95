"""Operator API fixtures: the dashboard's users in each role, each with an API token, and a client
that sends it as `Authorization: Bearer …`."""

import json

import pytest
from django.core.cache import cache
from django.test import Client

from dashboard.models import ApiToken
from tests.dashboard import conftest as dashboard
from tests.dashboard.conftest import make_user

# The dashboard's fixtures, here too: users in each role (and their logged-in clients), stored calls.
viewer, operator, superuser = dashboard.viewer, dashboard.operator, dashboard.superuser
viewer_client, operator_client, admin_client = (
    dashboard.viewer_client,
    dashboard.operator_client,
    dashboard.admin_client,
)
calls = dashboard.calls

API = "/api/v1/"


class Api:
    """Django's test client speaking JSON to /api/v1/ with one token (or none)."""

    def __init__(self, token=None, scheme="Bearer"):
        self.client = Client()
        self.token = token
        self.scheme = scheme

    def headers(self):
        return {"HTTP_AUTHORIZATION": f"{self.scheme} {self.token}"} if self.token else {}

    def get(self, path, params=None):
        return self.client.get(API + path, params or {}, **self.headers())

    def post(self, path, body=None):
        return self.send("post", path, body)

    def put(self, path, body=None):
        return self.send("put", path, body)

    def patch(self, path, body=None):
        return self.send("patch", path, body)

    def delete(self, path):
        return self.client.delete(API + path, **self.headers())

    def send(self, method, path, body):
        data = "" if body is None else json.dumps(body)
        return getattr(self.client, method)(API + path, data, content_type="application/json", **self.headers())


__all__ = ["make_user"]


def token_for(user, name="tests"):
    return ApiToken.issue(user, name)[1]


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    """The API's rate limit counts in the default cache (process memory): none left from another test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def viewer_api(viewer):
    return Api(token_for(viewer))


@pytest.fixture
def operator_api(operator):
    return Api(token_for(operator))


@pytest.fixture
def anonymous_api():
    return Api()


def error_of(response):
    """(status, code) of an error answer, checking it is the API's JSON error."""
    body = response.json()
    assert response["Content-Type"].startswith("application/json")
    assert set(body) <= {"code", "message", "problems"} and body["message"]
    return response.status_code, body["code"]
