"""The sandbox's own answers match the response schemas of Intercom's description (with objects
left open: the description lists fields, Intercom sends more)."""

import re

from forwarding.sandbox.openapi import OpenAPIValidator, SchemaConverter, describe

# The company schema types custom attribute values as strings, the contradiction the sandbox
# relaxes for requests (docs/architecture.md, "Intercom's description"); answers carry the
# numbers and booleans that were sent.
RELAXED = re.compile(r"body \$(\.data\[\d+\])?\.custom_attributes\.\w+: .* is not of type 'string'")


def response_problems(entry):
    validator = OpenAPIValidator.default()
    operation, _ = validator.match(entry["method"], entry["path"])
    responses = operation.spec["responses"]
    content = responses.get(str(entry["status"]), {}).get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return []
    converter = SchemaConverter(validator.document["components"]["schemas"], closed=False)
    schema_validator, _ = converter.validator(content["schema"])
    return [m for m in describe(schema_validator, entry["response_body"], "body") if not RELAXED.fullmatch(m)]


def test_it_answers_what_the_response_schemas_describe(api, sandbox):
    sandbox.state.add_data_attribute("plan_name")
    sandbox.state.add_data_attribute("seats", "company", "integer")
    api.get("/me")
    api.get("/data_attributes", params={"model": "contact"})
    api.post("/data_attributes", {"name": "since", "model": "contact", "data_type": "datetime"})
    bare = api.post("/contacts", {"role": "user", "external_id": "bare"}).json()
    contact = api.contact("u1", email="ada@example.com", name="Ada", avatar="https://example.com/a.png")
    api.put(f"/contacts/{contact['id']}", {"custom_attributes": {"plan_name": "pro"}, "last_seen_at": 1})
    api.get(f"/contacts/{bare['id']}")
    api.get("/contacts/find_by_external_id/u1")
    api.post("/contacts/search", {"query": {"field": "external_id", "operator": "=", "value": "u1"}})
    api.post(f"/contacts/{bare['id']}/archive")
    api.post(f"/contacts/{bare['id']}/unarchive")
    api.post("/events", {"event_name": "ordered", "created_at": 1700000000, "user_id": "u1"})
    api.get("/events", params={"type": "user", "user_id": "u1"})
    api.get("/events", params={"type": "user", "user_id": "u1", "summary": "true"})
    bare_company = api.post("/companies", {"company_id": "bare"}).json()
    company = api.post(
        "/companies", {"company_id": "acme", "name": "Acme", "plan": "pro", "custom_attributes": {"seats": 3}}
    ).json()
    api.post(f"/contacts/{contact['id']}/companies", {"id": company["id"]})
    api.post(f"/contacts/{contact['id']}/companies", {"id": bare_company["id"]})
    api.get(f"/contacts/{contact['id']}/companies")
    api.get("/companies", params={"company_id": "acme"})
    api.get(f"/companies/{company['id']}")
    api.post("/tags", {"name": "vip", "companies": [{"id": company["id"]}]})

    assert sandbox.violations == []
    problems = {(e["method"], e["path"]): response_problems(e) for e in sandbox.requests}
    assert {key: found for key, found in problems.items() if found} == {}
