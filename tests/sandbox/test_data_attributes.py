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
    assert len(sandbox.state.data_attributes) == 251  # the archived one is still there
    assert sandbox.violations == []


def test_it_applies_a_lower_configured_limit(api, sandbox):
    sandbox.configure(data_attribute_limit=1)
    assert api.post("/data_attributes", {"name": "first", "model": "contact", "data_type": "string"}).ok

    refused = api.post("/data_attributes", {"name": "second", "model": "contact", "data_type": "string"})

    assert error(refused)[:2] == (400, "parameter_invalid")


def create(api, name, model="contact", data_type="string"):
    return api.post("/data_attributes", {"name": name, "model": model, "data_type": data_type})


def custom_names(api, **params):
    listed = api.get("/data_attributes", params={"model": "contact", **params}).json()["data"]
    return [(a["name"], a["archived"]) for a in listed if a["custom"]]


def test_custom_names_are_unique_across_the_contact_and_company_models(api, sandbox):
    assert create(api, "plan", "contact").ok
    assert create(api, "tier", "company").ok

    company_plan = create(api, "plan", "company")
    contact_tier = create(api, "tier", "contact")

    assert error(company_plan) == (
        400,
        "parameter_invalid",
        "You already have 'plan' in your people data. To save this as new company data, use a different name.",
    )
    assert error(contact_tier) == (
        400,
        "parameter_invalid",
        "You already have 'tier' in your company data. To save this as new people data, use a different name.",
    )
    stored = [(a["name"], a["model"]) for a in sandbox.state.data_attributes]
    assert stored == [("plan", "contact"), ("tier", "company")]
    assert sandbox.violations == []


def test_a_standard_name_is_taken_in_its_own_model_only(api, sandbox):
    # Pins what the sandbox does: it refuses a model's own standard names and lets the other
    # model's through (Intercom documents neither case).
    own = create(api, "Email", "contact")

    assert error(own) == (
        400,
        "parameter_invalid",
        "You already have 'Email' in your people data. To save this as new people data, use a different name.",
    )
    assert create(api, "website", "contact").ok
    assert create(api, "email", "company").ok
    assert sandbox.violations == []


def test_an_archived_attribute_frees_its_slot_but_keeps_its_name(api, sandbox):
    sandbox.configure(data_attribute_limit=2)
    assert create(api, "plan").ok
    assert create(api, "seats", "contact", "integer").ok
    sandbox.state.archive_data_attribute("plan")

    same_model = create(api, "plan")
    other_model = create(api, "Plan", "company")

    assert error(same_model) == (
        400,
        "parameter_invalid",
        "You already have 'plan' in your people data. To save this as new people data, use a different name.",
    )
    assert error(other_model)[2].startswith("You already have 'Plan' in your people data.")
    assert create(api, "tier").ok  # the archived attribute's slot
    assert error(create(api, "fourth"))[:2] == (400, "parameter_invalid")
    assert custom_names(api) == [("seats", False), ("tier", False)]
    assert custom_names(api, include_archived="true") == [("plan", True), ("seats", False), ("tier", False)]
    assert sandbox.violations == []


def test_it_refuses_values_for_an_archived_custom_attribute(api, sandbox):
    sandbox.state.add_data_attribute("plan", "contact")
    sandbox.state.add_data_attribute("seats", "company", "integer")
    contact = api.contact("u1", custom_attributes={"plan": "pro"})
    sandbox.state.archive_data_attribute("plan")
    sandbox.state.archive_data_attribute("seats", "company")

    update = api.put(f"/contacts/{contact['id']}", {"custom_attributes": {"plan": "team"}})
    create_contact = api.post("/contacts", {"role": "user", "external_id": "u2", "custom_attributes": {"plan": "team"}})
    company = api.post("/companies", {"company_id": "acme", "custom_attributes": {"seats": 3}})

    assert error(update) == (400, "parameter_invalid", "Custom attribute 'plan' does not exist")
    assert error(create_contact) == (400, "parameter_invalid", "Custom attribute 'plan' does not exist")
    assert error(company) == (400, "parameter_invalid", "Custom attribute 'seats' does not exist")
    assert sandbox.state.contact_by_external_id("u1")["custom_attributes"] == {"plan": "pro"}
    assert sandbox.state.contact_by_external_id("u2") is None
    assert sandbox.state.companies == []
    assert sandbox.violations == []
