"""The OpenAPI description of the ingestion API at /api/schema/, and schemathesis run against it.

Schemathesis calls the WSGI application in this process (no socket, no network) with a valid
write key as HTTP Basic credentials, and checks every answer: never a 5xx, only documented status
codes, content types and headers, bodies that match their response schemas, 401 without the key.
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from forwarding.models import Call, RejectedMessage, Source
from forwarding.urls import BATCH_PATHS, MESSAGE_PATHS
from tests.ingestion.conftest import basic

BATCH_ROUTES = {f"/{path}" for path in BATCH_PATHS}


# Loaded when the module is collected (the schema view reads no database). Not through
# schemathesis.pytest.from_fixture: its lazy loader needs a pytest internal that pytest 9 dropped.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def write_key(db):
    """A valid write key; the test's transaction outlives each request, as in Django's test client."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield Source.create_with_key("Schemathesis")[1]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_description_says(case, write_key):
    # Not every string the description allows is a date the API can store (0001-01-01T00:00+23:59
    # has no UTC form), so a schema-valid request may get a 400: positive data is not checked.
    excluded = [positive_data_acceptance]
    if case.path in BATCH_ROUTES:
        # A batch answers 200 when messages in it are invalid: they are recorded as rejected, as
        # Segment does. So a batch that breaks the message schema is not refused, by design.
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"Authorization": basic(write_key)}, excluded_checks=excluded)


def test_it_serves_a_valid_openapi_description_without_a_login(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = json.loads(response.content)
    validate(document)
    assert document["components"]["securitySchemes"]["writeKey"] == {
        "type": "http",
        "scheme": "basic",
        "description": document["components"]["securitySchemes"]["writeKey"]["description"],
    }
    paths = set(document["paths"])
    routes = {f"/{route}" for routes in MESSAGE_PATHS.values() for route in routes} | BATCH_ROUTES
    assert paths == routes | {"/v1/projects/{write_key}/settings"}
    for path in routes:
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"writeKey": []}]
        assert set(operation["responses"]) == {"200", "400", "401", "429", "503"}
        assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_it_describes_what_each_route_requires(client):
    document = json.loads(client.get("/api/schema/?format=json").content)

    def body(path):
        return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/v1/track")["required"] == ["event"]
    assert body("/v1/t") == body("/v1/track")
    assert body("/v1/g")["required"] == ["groupId"]
    assert body("/v1/alias")["required"] == ["previousId", "userId"]
    assert "required" not in body("/v1/identify")
    assert body("/v1/batch")["required"] == ["batch"]
    assert document["components"]["schemas"]["Error"]["required"] == ["code", "message"]


@pytest.mark.django_db
def test_the_description_holds_no_stored_data(client, post):
    source, key = Source.create_with_key("Secret source name")
    post("/v1/track", {"type": "track", "userId": "user-xyz-123", "event": "Secret Event", "messageId": "m1"}, key=key)
    post("/v1/track", {"type": "track", "userId": "user-xyz-123", "event": "", "messageId": "m2"}, key=key)
    assert Call.objects.exists() and RejectedMessage.objects.exists()
    text = client.get("/api/schema/?format=json").content.decode()
    for secret in (key, source.key_prefix, source.key_hash, "Secret source name", "user-xyz-123", "Secret Event"):
        assert secret not in text
