"""Helpers for ingestion tests: post bodies the way clients do."""

import base64
import gzip
import json

import pytest


def basic(key):
    """An HTTP Basic Authorization header value with `key` as the user name."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def message(type_="track", **fields):
    """A minimal valid message of `type_`; `fields` override or add."""
    base = {"type": type_, "userId": "user-1", "messageId": f"m-{type_}"}
    if type_ == "track":
        base["event"] = "Signed Up"
    if type_ == "group":
        base["groupId"] = "org-1"
    if type_ == "alias":
        base["previousId"] = "anon-1"
    base.update(fields)
    return base


@pytest.fixture
def post(client):
    """post(path, body, key=None, gzip=False, content_type=..., headers=...) -> response.

    `body` may be a dict (sent as JSON) or bytes (sent as is). With `key` it goes in HTTP Basic.
    """

    def send(path, body, key=None, gzipped=False, content_type="application/json", **headers):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if gzipped:
            data = gzip.compress(data)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        if key is not None:
            headers["HTTP_AUTHORIZATION"] = basic(key)
        return client.generic("POST", path, data, content_type=content_type, **headers)

    return send
