from tests.sandbox.conftest import error


def test_it_lists_standard_and_custom_attributes_of_one_model(api, sandbox):
    sandbox.state.add_data_attribute("plan_name", "contact")
    sandbox.state.add_data_attribute("tier", "company")

    contact = api.get("/data_attributes", params={"model": "contact"}).json()
    company = api.get("/data_attributes", params={"model": "company"}).json()

    assert contact["type"] == "list"
    assert {a["model"] for a in contact["data"]} == {"contact"}
    custom = [a for a in contact["data"] if a["custom"]]
    assert [(a["name"], a["full_name"], a["data_type"]) for a in custom] == [
        ("plan_name", "custom_attributes.plan_name", "string")
    ]
    assert any(a["name"] == "email" and not a["custom"] for a in contact["data"])
    assert [a["name"] for a in company["data"] if a["custom"]] == ["tier"]
    assert sandbox.violations == []


def test_it_creates_a_data_attribute(api, sandbox):
    response = api.post("/data_attributes", {"name": "seats", "model": "company", "data_type": "integer"})

    assert response.status_code == 200
    attribute = response.json()
    assert attribute["type"] == "data_attribute"
    assert isinstance(attribute["id"], int)
    assert (attribute["name"], attribute["full_name"], attribute["model"]) == (
        "seats",
        "custom_attributes.seats",
        "company",
    )
    assert attribute["custom"] is True
    assert [a["name"] for a in sandbox.state.data_attributes] == ["seats"]


def test_it_refuses_a_name_that_is_already_taken(api, sandbox):
    sandbox.state.add_data_attribute("The One Ring", "company")

    same_model = api.post("/data_attributes", {"name": "The One Ring", "model": "company", "data_type": "string"})
    other_model = api.post("/data_attributes", {"name": "the one ring", "model": "contact", "data_type": "integer"})

    assert error(same_model) == (
        400,
        "parameter_invalid",
        "You already have 'The One Ring' in your company data. To save this as new company data, use a different name.",
    )
    assert error(other_model) == (
        400,
        "parameter_invalid",
        "You already have 'the one ring' in your company data. To save this as new people data, use a different name.",
    )


def test_it_refuses_a_name_with_characters_intercom_forbids(api):
    response = api.post("/data_attributes", {"name": "!nv@l!d n@me", "model": "company", "data_type": "string"})

    assert error(response) == (
        400,
        "parameter_invalid",
        "Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens",
    )


def test_it_refuses_a_custom_attribute_beyond_the_workspace_limit_of_250(api, sandbox):
    for n in range(125):
        sandbox.state.add_data_attribute(f"person_{n}", "contact")
        sandbox.state.add_data_attribute(f"company_{n}", "company")

    refused = api.post("/data_attributes", {"name": "one_too_many", "model": "contact", "data_type": "string"})

    status, code, message = error(refused)
    assert (status, code) == (400, "parameter_invalid")
    assert "250" in message
    assert len(sandbox.state.data_attributes) == 250

    sandbox.state.archive_data_attribute("person_0")
    assert api.post("/data_attributes", {"name": "one_too_many", "model": "contact", "data_type": "string"}).ok


def test_it_applies_a_lower_configured_limit(api, sandbox):
    sandbox.configure(data_attribute_limit=1)
    assert api.post("/data_attributes", {"name": "first", "model": "contact", "data_type": "string"}).ok

    refused = api.post("/data_attributes", {"name": "second", "model": "contact", "data_type": "string"})

    assert error(refused)[:2] == (400, "parameter_invalid")
