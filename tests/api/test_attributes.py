"""The shown workspace's data attributes through the API, and the operators' retry, ignore,
unignore and alias (forwarding.delivery.attributes' verbs), each in the admin log."""

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from forwarding import intercom
from forwarding.delivery import connection
from forwarding.models import DataAttribute, IntercomStatus
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db
WORKSPACE = "ws-shown"


@pytest.fixture(autouse=True)
def shown_workspace(db):
    IntercomStatus.objects.create(
        name="intercom",
        config_key=connection.config_key(),
        base_url=intercom.base_url(),
        workspace_id=WORKSPACE,
        last_success_at=timezone.now(),
    )


def attribute(name, model="contact", workspace=WORKSPACE, **fields):
    fields.setdefault("data_type", "string")
    return DataAttribute.objects.create(workspace=workspace, model=model, name=name, **fields)


def test_the_shown_workspaces_attributes_in_pages(viewer_api):
    plan = attribute("plan")
    refused = attribute("bad.name", usable=False, refusal="invalid_name", reason="Intercom refused the name")
    attribute("size", model="company")
    attribute("elsewhere", workspace="ws-other")
    body = viewer_api.get("attributes/", {"limit": 2}).json()
    assert [(r["name"], r["status"]) for r in body["results"]] == [("plan", "active"), ("bad.name", "refused")]
    assert body["results"][0]["id"] == plan.pk and body["results"][1]["id"] == refused.pk
    rest = viewer_api.get("attributes/", {"after": body["next"]}).json()
    assert [r["name"] for r in rest["results"]] == ["size"] and rest["next"] is None
    assert [r["name"] for r in viewer_api.get("attributes/", {"model": "company"}).json()["results"]] == ["size"]
    assert error_of(viewer_api.get("attributes/", {"model": "user"})) == (400, "invalid")


def test_retry_a_refused_attribute(operator_api, operator):
    row = attribute("bad.name", usable=False, refusal="invalid_name", reason="refused")
    response = operator_api.post(f"attributes/{row.pk}/retry/")
    assert response.status_code == 200
    assert response.json()["attribute"]["status"] == "pending"
    assert error_of(operator_api.post(f"attributes/{row.pk}/retry/")) == (409, "not_refused")
    entry = LogEntry.objects.get()
    assert entry.user == operator and entry.change_message.startswith("Retrying the contact attribute 'bad.name'")


def test_ignore_and_unignore(operator_api):
    row = attribute("plan")
    assert operator_api.post(f"attributes/{row.pk}/ignore/").json()["attribute"]["status"] == "ignored"
    assert error_of(operator_api.post(f"attributes/{row.pk}/ignore/")) == (409, "already_ignored")
    assert operator_api.post(f"attributes/{row.pk}/unignore/").json()["attribute"]["ignored"] is False
    assert error_of(operator_api.post(f"attributes/{row.pk}/unignore/")) == (409, "not_ignored")
    assert LogEntry.objects.count() == 2


def test_alias_writes_the_trait_under_another_name(operator_api):
    row = attribute("plan", usable=False, refusal="type_conflict")
    response = operator_api.post(f"attributes/{row.pk}/alias/", {"alias": "plan_name"})
    assert response.status_code == 200
    assert response.json()["attribute"]["written_as"] == "plan_name"
    assert "is written as 'plan_name'" in response.json()["message"]
    back = operator_api.post(f"attributes/{row.pk}/alias/", {"alias": "plan"}).json()
    assert back["attribute"]["alias"] == "" and "under its own name again (was 'plan_name')" in back["message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"alias": "bad.name!"}, "is not a valid attribute name"),
        ({"alias": ""}, "an alias cannot be empty"),
        ({"alias": "x" * 191}, "at most 190 characters"),
        ({"alias": 5}, "alias: Not a valid string."),
        ({}, "alias: This field is required."),
    ],
)
def test_a_bad_alias_is_a_400(operator_api, body, problem):
    row = attribute("plan")
    response = operator_api.post(f"attributes/{row.pk}/alias/", body)
    assert error_of(response) == (400, "invalid")
    assert problem in response.json()["message"]
    assert DataAttribute.objects.get(pk=row.pk).alias == ""


@pytest.mark.parametrize("action", ["retry", "ignore", "unignore", "alias"])
def test_an_attribute_of_another_workspace_is_a_404(operator_api, action):
    row = attribute("plan", workspace="ws-other", ignored=True, refusal="other")
    assert error_of(operator_api.post(f"attributes/{row.pk}/{action}/", {"alias": "x"}))[0] == 404
    assert not LogEntry.objects.exists()
