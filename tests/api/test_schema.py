"""The operator API's OpenAPI description at /api/v1/schema/, and schemathesis run against it with
an operator's token over stored calls, names, attributes, rules and a bulk resend.

Schemathesis calls the WSGI application in this process (no socket) and checks every answer:
never a 5xx, only documented status codes, content types and headers, bodies that match their
response schemas, 401 without the token, and bad input refused."""

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.wsgi import application
from dashboard import bulk
from dashboard.filters import LogFilter
from dashboard.models import ApiToken
from forwarding.models import DataAttribute, EventName, Rule
from forwarding.transformations import store
from tests.dashboard.conftest import Calls, make_user

SCHEMA = "/api/v1/schema/"
# Loaded when the module is collected (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi(SCHEMA, application)


@pytest.fixture
def operator_token(db, sandbox, settings):
    """An operator's token over some stored data; the test's transaction outlives each request, as
    in Django's test client. Forgetting a user asks the Intercom sandbox."""
    settings.RELAY_API_RATE = "off"
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        seed()
        yield ApiToken.issue(make_user("otto-operator", "Operators"), "schemathesis")[1]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def seed():
    from forwarding.models import Source

    calls = Calls(Source.create_with_key("Website")[0])
    failed = calls(state="failed", error_cause="http_400", last_status=400, warned=True, warnings=["cut"])
    calls.attempt(failed, outcome="failed", status=400, exchanges=[("POST", "/events", 400, "{}", '{"errors":[]}')])
    calls(type="identify", event="", email="ann@example.com", user_id="ann")
    calls(state="held", event="Held Name")
    EventName.objects.create(key="signed up", name="Signed Up")
    EventName.objects.create(key="held name", name="Held Name", held_count=1)
    DataAttribute.objects.create(model="contact", name="plan", data_type="string")
    DataAttribute.objects.create(model="contact", name="bad.name", usable=False, refusal="invalid_name")
    store.save(Rule(call_type="track", event="Signed Up", operations=[{"op": "rename_event", "to": "Joined"}]))
    bulk.create(LogFilter(state="failed"))


@schema.hook
def filter_query(ctx, query):
    """Leave out queries holding a parameter with an empty list for its value: it is sent as nothing
    at all, so such a "negative" request is a valid one (schemathesis would expect a 400)."""
    return not (isinstance(query, dict) and any(value == [] for value in query.values()))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_description_says(case, operator_token):
    # Not every value the description allows is one the API takes (a date-time Python cannot hold,
    # a source id that names no source, a rule the store's validation refuses): positive data is
    # not checked. Everything else is: no 5xx, documented statuses and bodies, negative data refused.
    headers = {"Authorization": f"Bearer {operator_token}"}
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


def test_it_serves_a_valid_description_of_the_api_only(client):
    response = client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = json.loads(response.content)
    validate(document)
    assert document["info"]["title"] == "Intercom Relay operator API"
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    paths = set(document["paths"])
    assert all(path.startswith("/api/v1/") for path in paths)
    assert "/api/v1/schema/" not in paths and "/v1/track" not in paths
    assert {"/api/v1/calls/", "/api/v1/bulk-resends/{id}/cancel/", "/api/v1/forget-user/", "/api/v1/status/"} <= paths
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"apiToken": []}], (method, path)
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_the_description_holds_no_stored_data(client, db):
    user = make_user("secret-staff-name")
    token = ApiToken.issue(user, "secret token name")[1]
    text = client.get(SCHEMA + "?format=json").content.decode()
    for secret in (token, token[:8], "secret-staff-name", "secret token name"):
        assert secret not in text


def test_the_ingestion_description_points_operators_to_this_one(client):
    document = json.loads(client.get("/api/schema/?format=json").content)
    assert "/api/v1/schema/" in document["info"]["description"]
    assert client.get(SCHEMA + "?format=json").status_code == 200
