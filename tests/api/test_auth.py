"""Who may call the operator API: a staff user's token, Bearer or Token; 401 JSON without one, with
an unknown or revoked one, or for a user no longer active staff; Viewers read, Operators act (403
JSON otherwise); the token stored hashed and its use noted at most once a minute."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.models import ApiToken, hash_token
from tests.api.conftest import Api, error_of, make_user, token_for

pytestmark = pytest.mark.django_db

READS = ["status/", "calls/", "deliveries/", "event-names/", "attributes/", "transformations/"]
# Every action, with a body that would pass validation: a viewer is refused before it is read.
ACTIONS = [
    ("post", "calls/1/resend/", None),
    ("post", "bulk-resends/", {"dry_run": True}),
    ("post", "bulk-resends/1/cancel/", None),
    ("post", "event-names/1/archive/", None),
    ("post", "event-names/1/unarchive/", None),
    ("post", "event-names/1/rename/", {"new_name": "Other"}),
    ("post", "event-names/1/release/", None),
    ("post", "attributes/1/retry/", None),
    ("post", "attributes/1/ignore/", None),
    ("post", "attributes/1/unignore/", None),
    ("post", "attributes/1/alias/", {"alias": "other"}),
    ("post", "transformations/", {"call_type": "track", "operations": []}),
    ("put", "transformations/1/", {"call_type": "track", "operations": []}),
    ("patch", "transformations/1/", {"enabled": False}),
    ("delete", "transformations/1/", None),
    ("post", "forget-user/", {"user_id": "ann"}),
]


def call(api, method, path, body):
    return api.delete(path) if method == "delete" else getattr(api, method)(path, body)


@pytest.mark.parametrize("path", READS)
def test_without_a_token_every_route_is_a_401_json(anonymous_api, path):
    response = anonymous_api.get(path)
    assert error_of(response) == (401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS)
def test_without_a_token_no_action_is_taken(anonymous_api, method, path, body):
    assert call(anonymous_api, method, path, body).status_code == 401


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer rly_not-a-token", "authentication_failed"),
        ("Bearer", "authentication_failed"),
        ("Bearer two words", "authentication_failed"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
def test_an_unknown_or_malformed_token_is_a_401(viewer, header, code):
    api = Api()
    response = api.client.get("/api/v1/status/", HTTP_AUTHORIZATION=header)
    assert error_of(response) == (401, code)


def test_a_revoked_token_is_a_401(viewer):
    token = token_for(viewer)
    assert Api(token).get("status/").status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    response = Api(token).get("status/")
    assert error_of(response) == (401, "authentication_failed")
    assert response.json()["message"] == "This API token was revoked."


@pytest.mark.parametrize("change", [{"is_active": False}, {"is_staff": False}])
def test_a_user_no_longer_active_staff_is_a_401(viewer, change):
    token = token_for(viewer)
    for name, value in change.items():
        setattr(viewer, name, value)
    viewer.save()
    assert error_of(Api(token).get("status/")) == (401, "authentication_failed")


def test_the_token_scheme_is_accepted_too(viewer):
    assert Api(token_for(viewer), scheme="Token").get("status/").status_code == 200


@pytest.mark.parametrize("path", READS)
def test_a_viewer_reads_everything(viewer_api, path):
    assert viewer_api.get(path).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS)
def test_a_viewer_is_refused_every_action_with_a_403_json(viewer_api, method, path, body):
    response = call(viewer_api, method, path, body)
    assert error_of(response) == (403, "permission_denied")
    assert not LogEntry.objects.exists()


def test_staff_without_a_role_reads_nothing(db):
    nobody = make_user("nora-norole")
    assert error_of(Api(token_for(nobody)).get("calls/")) == (403, "permission_denied")


def test_an_operator_acts(operator_api):
    response = operator_api.post("bulk-resends/", {"dry_run": True})
    assert response.status_code == 200 and response.json()["total"] == 0


def test_the_token_is_stored_hashed_and_never_in_clear(viewer):
    row, token = ApiToken.issue(viewer, "ci")
    assert token.startswith("rly_") and len(token) > 40
    assert row.prefix == token[:8] and row.token_hash == hash_token(token)
    stored = ApiToken.objects.filter(pk=row.pk).values().get()
    assert not [name for name, value in stored.items() if isinstance(value, str) and token in value]
    Api(token).get("status/")
    assert not Session.objects.exists()
    assert not [entry for entry in LogEntry.objects.all() if token in entry.change_message + entry.object_repr]


def test_last_used_is_written_at_most_once_a_minute(viewer):
    token = token_for(viewer)
    api = Api(token)
    assert ApiToken.objects.get().last_used_at is None
    api.get("event-names/")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    api.get("event-names/")
    assert ApiToken.objects.get().last_used_at == first  # within the minute: not written again
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("event-names/")
    assert ApiToken.objects.get().last_used_at > first


def test_a_recently_used_token_is_checked_without_a_write(viewer):
    api = Api(token_for(viewer))
    api.get("event-names/")  # the first use writes last_used_at
    with CaptureQueriesContext(connection) as captured:
        assert api.get("event-names/").status_code == 200
    assert not [q["sql"] for q in captured if q["sql"].startswith("UPDATE")]
