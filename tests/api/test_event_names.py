"""The event-name registry through the API: keyset pages, archive, unarchive, rename and release
(forwarding.event_names' verbs), 409 when there is nothing to do, each action in the admin log."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.utils import timezone

from forwarding.models import Delivery, EventName, NameStatus, State
from forwarding.transformations import store
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def name(label, slot=True, **fields):
    seen = timezone.now() - timedelta(days=1)
    return EventName.objects.create(
        key=label.lower(), name=label, slot_used_at=seen if slot else None, last_seen_at=seen, **fields
    )


def test_the_registry_in_keyset_pages(viewer_api):
    made = [name(f"Event {n}") for n in range(5)]
    body = viewer_api.get("event-names/", {"limit": 3}).json()
    assert [row["id"] for row in body["results"]] == [entry.pk for entry in made[:3]]
    assert body["next"] == str(made[2].pk)
    rest = viewer_api.get("event-names/", {"limit": 3, "after": body["next"]}).json()
    assert [row["name"] for row in rest["results"]] == ["Event 3", "Event 4"] and rest["next"] is None
    assert body["results"][0]["has_slot"] is True and body["results"][0]["renamed_to"] is None


def test_the_registry_filters_by_status_and_name(viewer_api):
    name("Signed Up")
    name("Old Thing", status=NameStatus.ARCHIVED)
    assert [r["name"] for r in viewer_api.get("event-names/", {"status": "archived"}).json()["results"]] == [
        "Old Thing"
    ]
    assert [r["name"] for r in viewer_api.get("event-names/", {"q": "SIGNED"}).json()["results"]] == ["Signed Up"]
    assert error_of(viewer_api.get("event-names/", {"status": "gone"})) == (400, "invalid")
    assert error_of(viewer_api.get("event-names/", {"after": "x"})) == (400, "invalid")


def test_archive_then_unarchive(operator_api, operator):
    entry = name("Signed Up")
    response = operator_api.post(f"event-names/{entry.pk}/archive/")
    assert response.status_code == 200
    assert response.json()["event_name"]["status"] == "archived" and "Intercom" in response.json()["reminder"]
    assert error_of(operator_api.post(f"event-names/{entry.pk}/archive/")) == (409, "already_archived")
    response = operator_api.post(f"event-names/{entry.pk}/unarchive/")
    assert response.status_code == 200 and response.json()["event_name"]["status"] == "active"
    assert error_of(operator_api.post(f"event-names/{entry.pk}/unarchive/")) == (409, "not_archived")
    messages = [e.change_message for e in LogEntry.objects.order_by("pk")]
    assert [m.split(" (through")[0] for m in messages] == ["Archived 'Signed Up'", "Unarchived 'Signed Up'"]
    assert all(e.user == operator for e in LogEntry.objects.all())


def test_rename_to_a_new_name_resending_held_and_failed_calls(operator_api, calls):
    entry = name("signup", held_count=1)
    held = calls(event="signup", state=State.HELD)
    response = operator_api.post(f"event-names/{entry.pk}/rename/", {"new_name": "Signed Up", "resend": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["target"]["name"] == "Signed Up" and body["event_name"]["renamed_to"] == "Signed Up"
    assert body["resent"] == 1 and Delivery.objects.get(pk=held.pk).state == State.PENDING
    assert store.renames()["signup"].to == "Signed Up"
    added = LogEntry.objects.get(action_flag=ADDITION, object_repr="Signed Up")
    assert added.change_message.startswith("Added as the new name of 'signup'")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"new_name": "signup"}, "cannot be renamed to itself"),
        ({"new_name": "   "}, "new_name: cannot be blank"),
        ({"new_name": "x" * 256}, "new_name"),
        ({"new_name": 12}, "new_name: Not a valid string."),
        ({"new_name": "Other", "resend": "yes"}, "resend"),
        ({}, "new_name: This field is required."),
    ],
)
def test_a_bad_rename_is_a_400(operator_api, body, problem):
    entry = name("signup")
    response = operator_api.post(f"event-names/{entry.pk}/rename/", body)
    assert error_of(response) == (400, "invalid")
    assert problem in response.json()["message"]
    assert not store.renames()


def test_release_tries_held_calls_again(operator_api, calls):
    entry = name("Held Name", held_count=1)
    held = calls(event="Held Name", state=State.HELD)
    response = operator_api.post(f"event-names/{entry.pk}/release/")
    assert response.status_code == 200 and response.json()["released"] == 1
    assert Delivery.objects.get(pk=held.pk).state == State.PENDING
    assert LogEntry.objects.get().change_message.startswith("Released 1 held call of 'Held Name'")


@pytest.mark.parametrize("action", ["archive", "unarchive", "rename", "release"])
def test_a_name_that_does_not_exist_is_a_404(operator_api, action):
    assert error_of(operator_api.post(f"event-names/999/{action}/", {"new_name": "x"}))[0] == 404
