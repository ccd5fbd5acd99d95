"""The relay's status (cheap queries only: no COUNT over calls) and forgetting a user through the
API (the tombstone answered, never the userId)."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forwarding.models import Call, EventName, Forgotten, SuppressedUser, hash_user
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def test_the_status_has_the_backlog_the_connection_and_the_limits(viewer_api, calls, settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 10
    now = timezone.now()
    calls(state="pending", next_attempt_at=now - timedelta(minutes=5))
    calls(state="pending", next_attempt_at=now + timedelta(hours=1))
    calls(state="failed")
    EventName.objects.create(key="signed up", name="Signed Up", slot_used_at=now)
    with CaptureQueriesContext(connection) as captured:
        response = viewer_api.get("status/")
    assert response.status_code == 200
    body = response.json()
    assert (body["backlog"]["pending_or_in_flight"], body["backlog"]["due"]) == (2, 1)
    assert 290 <= body["backlog"]["oldest_due_seconds"] <= 400
    assert body["intercom"]["state"] == "unknown" and body["intercom"]["headline"] == "Not contacted yet"
    assert body["event_names"] == {"used": 1, "limit": 10, "percent": 10}
    assert body["attributes"]["used"] == 0 and body["workers"]["stalled"] in (True, False)
    assert set(body["last_24_hours"]) >= {"delivered", "failed", "in_progress"}
    assert not [q["sql"] for q in captured if "forwarding_call" in q["sql"]]  # the calls are never read


def test_an_operator_forgets_a_user(operator_api, operator, calls, sandbox):
    call = calls(user_id="ann", email="ann@example.com")
    response = operator_api.post("forget-user/", {"user_id": "ann", "suppress": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_hash"] == hash_user("ann") and body["calls_expunged"] == 1 and body["suppress"] is True
    assert body["intercom"] == "absent" and body["requested_by"] == "otto-operator"
    assert "ann" not in response.content.decode().replace(hash_user("ann"), "")
    assert body["message"] == "Forgot a user: 1 calls expunged, later calls suppressed; Intercom contact absent."
    call.refresh_from_db()
    assert (call.payload, call.user_id) == (None, "")
    assert SuppressedUser.objects.filter(user_hash=hash_user("ann")).exists()
    entry = LogEntry.objects.get()
    assert entry.user == operator and "ann" not in entry.change_message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "user_id: This field is required."),
        ({"user_id": "  "}, "user_id: cannot be blank"),
        ({"user_id": 42}, "user_id: Not a valid string."),
        ({"user_id": "x" * 256}, "user_id"),
        ({"user_id": "ann", "suppress": "on"}, "suppress"),
        ({"user_id": "a\u0000b"}, "user_id"),
    ],
)
def test_bad_input_forgets_nobody(operator_api, calls, body, problem):
    calls(user_id="ann")
    response = operator_api.post("forget-user/", body)
    assert error_of(response) == (400, "invalid")
    assert problem in response.json()["message"]
    assert not Forgotten.objects.exists() and Call.objects.get().payload is not None
