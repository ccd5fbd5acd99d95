"""Transformation rules through the API: listed in the order they run, added, replaced, changed in
part and deleted through the store (a new revision, the admin log); the store's validation
problems are the 400's; a stale revision is a 409."""

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

from forwarding.models import Rule, Source
from forwarding.transformations import store
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db

RENAME = [{"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}]


def make(event="Order Completed", **fields):
    return store.save(Rule(call_type="track", event=event, operations=RENAME, **fields))


def test_the_rules_in_the_order_they_run_in_pages(viewer_api):
    first, second, third = make("A"), make("B"), make("C")
    store.move(third, 1)
    body = viewer_api.get("transformations/", {"limit": 2}).json()
    assert [r["id"] for r in body["results"]] == [third.pk, first.pk]
    rest = viewer_api.get("transformations/", {"limit": 2, "after": body["next"]}).json()
    assert [r["id"] for r in rest["results"]] == [second.pk] and rest["next"] is None
    rule = body["results"][0]
    assert rule["operations"] == RENAME and rule["event"] == "C" and rule["source"] is None
    assert viewer_api.get(f"transformations/{first.pk}/").json()["event"] == "A"


def test_an_operator_adds_a_rule(operator_api, operator):
    source = Source.create_with_key("Shop")[0]
    body = {"name": "revenue", "call_type": "track", "event": "Order Completed", "source": str(source.pk)}
    response = operator_api.post("transformations/", {**body, "operations": RENAME})
    assert response.status_code == 201, response.content
    made = response.json()
    rule = Rule.objects.get()
    assert made["id"] == rule.pk and made["revision"] == 1 and rule.source_id == source.pk
    assert rule.updated_by == "otto-operator"
    entry = LogEntry.objects.get()
    assert entry.action_flag == ADDITION and entry.user == operator
    assert entry.change_message.startswith("Added (through the API, token rly_")


def test_a_rule_is_added_at_a_position(operator_api):
    first = make("A")
    made = operator_api.post("transformations/", {"call_type": "page", "operations": RENAME, "position": 1}).json()
    assert [r["id"] for r in operator_api.get("transformations/").json()["results"]] == [made["id"], first.pk]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"call_type": "track"}, "operations"),
        ({"call_type": "fax", "operations": []}, "call_type: must be one of"),
        ({"call_type": "track", "operations": [{"op": "explode"}]}, 'unknown op "explode"'),
        ({"call_type": "track", "operations": [], "colour": "red"}, "colour: unknown key"),
        ({"call_type": "track", "operations": [], "source": "99999"}, "source: there is no source 99999"),
        ({"call_type": "track", "operations": [], "source": "abc"}, "source: 'abc' is no source id"),
        ({"call_type": "track", "operations": [], "name": 5}, "name: must be text or null"),
        ({"call_type": "track", "operations": [], "position": 0}, "position"),
        ({"call_type": "identify", "operations": [], "event": "x"}, "event: identify rules have no event name"),
        ({"call_type": "track", "operations": "rename"}, "operations"),
        ({"call_type": "track", "operations": [], "name": "a\u0000b"}, "NUL"),
        ([1, 2], "The body must be a JSON object"),
    ],
)
def test_an_invalid_rule_is_a_400_with_its_problems(operator_api, body, problem):
    response = operator_api.post("transformations/", body)
    assert error_of(response) == (400, "invalid")
    assert problem in response.json()["message"] and response.json()["problems"]
    assert not Rule.objects.exists() and not LogEntry.objects.exists()


def test_put_replaces_and_patch_changes_part(operator_api):
    rule = make("A", name="old")
    put = operator_api.put(f"transformations/{rule.pk}/", {"call_type": "page", "operations": RENAME, "name": "new"})
    assert put.status_code == 200, put.content
    assert (put.json()["call_type"], put.json()["event"], put.json()["revision"]) == ("page", None, 2)
    patch = operator_api.patch(f"transformations/{rule.pk}/", {"enabled": False, "revision": 2})
    assert patch.status_code == 200
    assert (patch.json()["enabled"], patch.json()["name"], patch.json()["revision"]) == (False, "new", 3)
    messages = [e.change_message.split(" (")[0] for e in LogEntry.objects.filter(action_flag=CHANGE).order_by("pk")]
    assert messages == ["Changed name, call type, event name", "Changed enabled"]


def test_a_put_without_what_a_rule_needs_is_a_400(operator_api):
    rule = make("A")
    response = operator_api.put(f"transformations/{rule.pk}/", {"name": "x"})
    assert error_of(response) == (400, "invalid")
    assert Rule.objects.get().revision == 1


def test_a_stale_revision_is_a_409_and_saves_nothing(operator_api):
    rule = make("A")
    store.save(rule, None, "someone else")
    response = operator_api.patch(f"transformations/{rule.pk}/", {"name": "mine", "revision": 1})
    assert error_of(response) == (409, "stale")
    assert Rule.objects.get().name == ""


def test_delete(operator_api, operator):
    rule = make("A")
    assert operator_api.delete(f"transformations/{rule.pk}/").status_code == 204
    assert not Rule.objects.exists()
    assert LogEntry.objects.get(action_flag=DELETION).user == operator
    assert error_of(operator_api.delete(f"transformations/{rule.pk}/")) == (404, "not_found")


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_a_rule_that_does_not_exist_is_a_404(operator_api, method):
    path = "transformations/999/"
    if method in ("get", "delete"):
        response = getattr(operator_api, method)(path)
    else:
        response = getattr(operator_api, method)(path, {"call_type": "track", "operations": RENAME})
    assert error_of(response) == (404, "not_found")


def test_an_operation_named_by_a_non_text_value_is_a_400(operator_api):
    response = operator_api.post("transformations/", {"call_type": "page", "operations": [{"op": {}}]})
    assert error_of(response) == (400, "invalid")
    assert response.json()["problems"] == ["operation 1: op: must be the name of an operation (text)"]
