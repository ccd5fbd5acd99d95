"""The dashboard's API tokens page: a staff user creates a token (shown once, in the answer to the
POST, with a curl example), lists and revokes their own; a superuser sees and revokes everyone's;
each create and revoke is in the admin log, which never holds the token."""

import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.sessions.models import Session
from django.urls import reverse

from dashboard.models import ApiToken, hash_token
from tests.api.conftest import Api, make_user, token_for
from tests.dashboard.conftest import client_for

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:api_tokens")
CREATE = reverse("admin:api_token_create")


def shown_token(response):
    found = re.search(r'<pre class="json" id="new-token">(rly_[A-Za-z0-9_-]+)</pre>', response.content.decode())
    return found and found[1]


def test_a_viewer_creates_a_token_shown_once_and_it_works(viewer_client, viewer):
    response = viewer_client.post(CREATE, {"name": "reporting script"})
    assert response.status_code == 201
    token = shown_token(response)
    assert token and token.startswith("rly_")
    body = response.content.decode()
    assert f"curl -H &quot;Authorization: Bearer {token}&quot; http://testserver/api/v1/status/" in body
    assert "shown only this once" in body
    assert "no-store" in response["Cache-Control"]

    row = ApiToken.objects.get()
    assert (row.user, row.name, row.prefix) == (viewer, "reporting script", token[:8])
    assert row.token_hash == hash_token(token)
    assert not [v for v in ApiToken.objects.values().get().values() if isinstance(v, str) and token in v]
    assert all(token not in session.session_data for session in Session.objects.all())
    listed = viewer_client.get(PAGE).content.decode()
    assert token not in listed and f"{token[:8]}…" in listed and "reporting script" in listed

    entry = LogEntry.objects.get()
    assert entry.action_flag == ADDITION and entry.user == viewer
    assert entry.change_message == f"Created API token 'reporting script' ({token[:8]}…)."
    assert token not in entry.object_repr

    assert Api(token).get("calls/").status_code == 200


def test_a_token_needs_a_name(viewer_client):
    response = viewer_client.post(CREATE, {"name": "   "})
    assert response.status_code == 400
    assert "No token created" in response.content.decode()
    assert not ApiToken.objects.exists() and not LogEntry.objects.exists()
    too_long = viewer_client.post(CREATE, {"name": "x" * 101})
    assert too_long.status_code == 400 and not ApiToken.objects.exists()


def test_revoking_a_token_stops_it(operator_client, operator):
    token = token_for(operator, "deploy")
    row = ApiToken.objects.get()
    response = operator_client.post(reverse("admin:api_token_revoke", args=[row.pk]), follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        f"Revoked the token 'deploy' ({row.prefix}…): it no longer works."
    ]
    assert ApiToken.objects.get().revoked_at is not None
    assert Api(token).get("status/").status_code == 401
    entry = LogEntry.objects.get(action_flag=CHANGE)
    assert entry.change_message == f"Revoked API token 'deploy' ({row.prefix}…)."
    again = operator_client.post(reverse("admin:api_token_revoke", args=[row.pk]), follow=True)
    assert [str(m) for m in again.context["messages"]] == ["The token 'deploy' was already revoked."]
    assert LogEntry.objects.count() == 1


def test_users_see_and_revoke_only_their_own_tokens(viewer_client, viewer, operator):
    token_for(viewer, "mine")
    token_for(operator, "theirs")
    theirs = ApiToken.objects.get(name="theirs")
    listed = viewer_client.get(PAGE).content.decode()
    assert "mine" in listed and "theirs" not in listed
    assert viewer_client.post(reverse("admin:api_token_revoke", args=[theirs.pk])).status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_a_superuser_sees_and_revokes_everyones(admin_client, viewer, superuser):
    token_for(viewer, "vera's")
    row = ApiToken.objects.get()
    listed = admin_client.get(PAGE).content.decode()
    assert "Everyone's tokens" in listed and "vera-viewer" in listed
    admin_client.post(reverse("admin:api_token_revoke", args=[row.pk]))
    assert ApiToken.objects.get().revoked_at is not None
    assert LogEntry.objects.get().change_message == f"Revoked API token 'vera's' ({row.prefix}…) of vera-viewer."


def test_staff_without_a_role_and_anonymous_users_cannot_use_the_page(client, db):
    nobody = client_for(make_user("nora-norole"))
    assert nobody.get(PAGE).status_code == 403
    assert nobody.post(CREATE, {"name": "x"}).status_code == 403
    assert client.get(PAGE).status_code == 302  # to the login page
    assert not ApiToken.objects.exists()


def test_the_forms_are_csrf_protected(viewer):
    strict = client_for(viewer, csrf=True)
    assert strict.post(CREATE, {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_curl_example_uses_the_public_url(viewer_client, settings):
    settings.RELAY_PUBLIC_URL = "https://relay.example.com/relay/"
    body = viewer_client.post(CREATE, {"name": "ci"}).content.decode()
    assert "https://relay.example.com/relay/api/v1/status/" in body


def test_the_sidebar_leads_to_the_page(viewer_client):
    overview = viewer_client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{PAGE}">API tokens</a>' in overview
    page = viewer_client.get(PAGE).content.decode()
    assert 'class="model-api-tokens current-model"' in page
