from tests.sandbox.conftest import error


def test_it_creates_a_company_then_updates_it_by_company_id(api, sandbox):
    created = api.post("/companies", {"company_id": "acme", "name": "Acme", "plan": "pro", "size": 10})
    updated = api.post("/companies", {"company_id": "acme", "name": "Acme Inc", "monthly_spend": 155})

    assert created.status_code == 200
    company = created.json()
    assert company["type"] == "company"
    assert (company["company_id"], company["name"], company["size"]) == ("acme", "Acme", 10)
    assert company["plan"]["name"] == "pro"
    assert updated.json()["id"] == company["id"]
    assert (updated.json()["name"], updated.json()["monthly_spend"]) == ("Acme Inc", 155)
    assert len(sandbox.state.companies) == 1
    assert sandbox.violations == []


def test_it_takes_number_and_boolean_company_custom_attributes_that_exist(api, sandbox):
    sandbox.state.add_data_attribute("seats", "company", "integer")
    sandbox.state.add_data_attribute("trial", "company", "boolean")

    response = api.post("/companies", {"company_id": "acme", "custom_attributes": {"seats": 12, "trial": False}})

    assert response.status_code == 200
    assert response.json()["custom_attributes"] == {"seats": 12, "trial": False}
    assert sandbox.violations == []


def test_it_refuses_an_unknown_company_custom_attribute(api, sandbox):
    response = api.post("/companies", {"company_id": "acme", "custom_attributes": {"seats": 12}})

    assert error(response) == (400, "parameter_invalid", "Custom attribute 'seats' does not exist")
    assert sandbox.state.companies == []


def test_it_attaches_a_contact_to_a_company_and_lists_it(api, sandbox):
    contact = api.contact("u1")
    company = api.post("/companies", {"company_id": "acme", "name": "Acme"}).json()

    attached = api.post(f"/contacts/{contact['id']}/companies", {"id": company["id"]})
    again = api.post(f"/contacts/{contact['id']}/companies", {"id": company["id"]})
    listed = api.get(f"/contacts/{contact['id']}/companies")

    assert attached.status_code == 200
    assert attached.json()["id"] == company["id"]
    assert again.json()["user_count"] == 1
    assert [c["id"] for c in listed.json()["data"]] == [company["id"]]
    assert listed.json()["total_count"] == 1
    assert sandbox.state.attachments == [{"contact_id": contact["id"], "company_id": company["id"]}]
    assert api.get(f"/contacts/{contact['id']}").json()["companies"]["data"][0]["id"] == company["id"]
    assert sandbox.violations == []


def test_it_answers_404_for_an_unknown_company_or_contact(api, sandbox):
    contact = api.contact("u1")
    company = api.post("/companies", {"company_id": "acme"}).json()

    no_company = api.post(f"/contacts/{contact['id']}/companies", {"id": "000000000000000000000000"})
    no_contact = api.post("/contacts/000000000000000000000000/companies", {"id": company["id"]})
    no_list = api.get("/contacts/000000000000000000000000/companies")

    assert error(no_company) == (404, "company_not_found", "Company Not Found")
    assert error(no_contact) == (404, "not_found", "User Not Found")
    assert error(no_list) == (404, "not_found", "User Not Found")
    assert sandbox.state.attachments == []


def test_it_detaches_a_contact_from_a_company(api, sandbox):
    contact = api.contact("u1")
    company = api.post("/companies", {"company_id": "acme"}).json()
    api.post(f"/contacts/{contact['id']}/companies", {"id": company["id"]})

    detached = api.delete(f"/contacts/{contact['id']}/companies/{company['id']}")

    assert detached.json()["user_count"] == 0
    assert sandbox.state.attachments == []


def test_it_finds_companies_by_company_id_or_name_also_without_a_name(api, sandbox):
    unnamed = api.post("/companies", {"company_id": "bare"}).json()
    named = api.post("/companies", {"company_id": "acme", "name": "Acme"}).json()

    by_id = api.get("/companies", params={"company_id": "bare"})
    by_name = api.get("/companies", params={"name": "Acme"})

    assert [c["id"] for c in by_id.json()["data"]] == [unnamed["id"]]
    assert [c["id"] for c in by_name.json()["data"]] == [named["id"]]
    assert sandbox.violations == []


def test_it_tags_companies_by_id_or_company_id_and_keeps_one_tag_per_name(api, sandbox):
    acme = api.post("/companies", {"company_id": "acme"}).json()
    api.post("/companies", {"company_id": "globex"})

    first = api.post("/tags", {"name": "VIP", "companies": [{"id": acme["id"]}]})
    second = api.post("/tags", {"name": "vip", "companies": [{"company_id": "globex"}, {"id": acme["id"]}]})

    assert first.status_code == 200
    assert (first.json()["type"], first.json()["name"]) == ("tag", "VIP")
    assert first.json()["companies"] == [{"id": acme["id"], "tagged": True}]
    assert second.json()["id"] == first.json()["id"]  # names ignore case: the same tag
    tagged = {c["company_id"]: [t["name"] for t in c["tags"]["tags"]] for c in sandbox.state.companies}
    assert tagged == {"acme": ["VIP"], "globex": ["VIP"]}  # tagging twice holds the tag once
    assert sandbox.violations == []


def test_it_untags_a_company(api, sandbox):
    acme = api.post("/companies", {"company_id": "acme"}).json()
    api.post("/tags", {"name": "vip", "companies": [{"id": acme["id"]}]})

    response = api.post("/tags", {"name": "vip", "companies": [{"id": acme["id"], "untag": True}]})

    assert response.json()["companies"] == [{"id": acme["id"], "tagged": False}]
    assert api.get(f"/companies/{acme['id']}").json()["tags"]["tags"] == []
    assert sandbox.violations == []


def test_it_refuses_a_tag_for_an_unknown_company_and_a_body_the_description_does_not_allow(api, sandbox):
    unknown = api.post("/tags", {"name": "vip", "companies": [{"company_id": "nobody"}]})
    misspelt = api.post("/tags", {"name": "vip", "companies": [{"companyId": "acme"}]})

    assert error(unknown) == (404, "company_not_found", "Company Not Found")
    assert sandbox.state.tags == []  # nothing half-done
    assert misspelt.status_code == 400
    assert [v["messages"] for v in sandbox.violations] == [
        ["body $.companies[0]: 'companyId' is not in the description"]
    ]
