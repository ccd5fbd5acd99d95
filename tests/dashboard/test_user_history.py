"""A user's history: found by userId, email or anonymousId; their calls in order; their Intercom
contact and companies."""

import pytest
from django.urls import reverse

from dashboard.queries.people import HISTORY_SIZE
from forwarding import intercom
from forwarding.delivery import connection
from forwarding.models import CallType, CompanyLink, ContactLink, IntercomStatus

pytestmark = pytest.mark.django_db

HISTORY = reverse("admin:user_history")


def types(response):
    return [row.call.type for row in response.context["history"].rows]


@pytest.fixture
def ada(calls):
    """Ada's calls: anonymous first, then identified, then the rest."""
    return [
        calls(type=CallType.PAGE, user_id="", anonymous_id="anon-ada", event="Home", delivery_user_id="ada"),
        calls(type=CallType.IDENTIFY, user_id="ada", anonymous_id="anon-ada", email="ada@example.com"),
        calls(type=CallType.TRACK, user_id="ada", event="Signed Up"),
        calls(type=CallType.GROUP, user_id="ada", group_id="org-1"),
        calls(type=CallType.GROUP, user_id="ada", group_id="org-2"),
        calls(type=CallType.PAGE, user_id="ada", event="Docs", state="failed"),
    ]


@pytest.mark.parametrize("q", ["ada", "ada@example.com", "anon-ada"])
def test_it_finds_a_user_by_user_id_email_or_anonymous_id(viewer_client, ada, q):
    response = viewer_client.get(f"{HISTORY}?q={q}")
    assert response.status_code == 200
    assert response.context["person"].user_id == "ada"
    assert types(response) == ["page", "identify", "track", "group", "group", "page"]


def test_the_timeline_is_in_the_order_received_with_states_and_attempts(viewer_client, ada):
    response = viewer_client.get(f"{HISTORY}?q=ada")
    rows = response.context["history"].rows
    assert [r.call.pk for r in rows] == [c.pk for c in ada]
    assert rows[-1].delivery.state == "failed"
    body = response.content.decode()
    assert body.index('data-type="identify"') < body.index('data-type="track"') < body.index('data-type="group"')


def test_an_anonymous_call_not_yet_attributed_shows_under_the_user(viewer_client, ada, calls):
    waiting = calls(user_id="", anonymous_id="anon-ada", state="waiting", event="Later")
    response = viewer_client.get(f"{HISTORY}?q=ada")
    assert waiting.pk in [row.call.pk for row in response.context["history"].rows]


def test_it_shows_the_contact_id_and_companies(viewer_client, ada):
    ContactLink.objects.create(user_id="ada", contact_id="c-123")
    CompanyLink.objects.create(group_id="org-1", company_id="ic-1")
    response = viewer_client.get(f"{HISTORY}?q=ada")
    history = response.context["history"]
    assert history.contact_id == "c-123"
    assert history.companies == [("org-1", "ic-1"), ("org-2", "")]
    assert (history.emails, history.anonymous_ids, history.failed) == (["ada@example.com"], ["anon-ada"], 1)
    body = response.content.decode()
    assert "c-123" in body and "ic-1" in body and "not created yet" in body


def test_an_anonymous_visitor_has_a_history_too(viewer_client, calls):
    calls(user_id="", anonymous_id="visitor-1", state="waiting", event="Viewed Pricing")
    response = viewer_client.get(f"{HISTORY}?q=visitor-1")
    assert response.context["person"].anonymous_id == "visitor-1"
    assert types(response) == ["track"]


def test_an_email_of_several_users_lets_you_choose(viewer_client, calls):
    calls(type=CallType.IDENTIFY, user_id="u1", email="shared@example.com")
    calls(type=CallType.IDENTIFY, user_id="u2", email="shared@example.com")
    response = viewer_client.get(f"{HISTORY}?q=shared@example.com")
    assert response.context["history"] is None
    assert sorted(p.user_id for p, _ in response.context["people"]) == ["u1", "u2"]


def test_nobody_found_says_so(viewer_client, db):
    body = viewer_client.get(f"{HISTORY}?q=ghost").content.decode()
    assert 'id="no-user"' in body


def test_a_long_history_pages_back_in_time(viewer_client, calls):
    made = [calls(user_id="busy") for _ in range(HISTORY_SIZE + 5)]
    latest = viewer_client.get(f"{HISTORY}?q=busy")
    assert [r.call.pk for r in latest.context["history"].rows] == [c.pk for c in made[5:]]
    earlier = viewer_client.get(latest.context["earlier_url"])
    assert [r.call.pk for r in earlier.context["history"].rows] == [c.pk for c in made[:5]]
    assert not earlier.context["earlier_url"]
    again = viewer_client.get(earlier.context["later_url"])
    assert [r.call.pk for r in again.context["history"].rows] == [c.pk for c in made[5:]]


def test_operators_see_resend_failed_and_viewers_do_not(viewer_client, operator_client, ada):
    assert 'id="resend-failed-button"' not in viewer_client.get(f"{HISTORY}?q=ada").content.decode()
    assert 'id="resend-failed-button"' in operator_client.get(f"{HISTORY}?q=ada").content.decode()


def test_the_page_costs_a_bounded_number_of_queries(viewer_client, ada, calls, django_assert_max_num_queries):
    for n in range(150):
        calls(user_id="ada", state="failed" if n % 5 == 0 else "delivered")
    with django_assert_max_num_queries(18):
        response = viewer_client.get(f"{HISTORY}?q=ada@example.com")
    assert len(response.context["history"].rows) == HISTORY_SIZE


def test_only_the_shown_workspaces_contact_and_companies_are_shown(viewer_client, ada):
    # The token now writes to ws-new: ids cached for ws-old mean nothing there.
    IntercomStatus.objects.create(
        name="intercom", config_key=connection.config_key(), base_url=intercom.base_url(), workspace_id="ws-new"
    )
    ContactLink.objects.create(workspace="ws-old", user_id="ada", contact_id="c-old")
    CompanyLink.objects.create(workspace="ws-old", group_id="org-1", company_id="ic-old-1")
    CompanyLink.objects.create(workspace="ws-new", group_id="org-2", company_id="ic-new-2")
    response = viewer_client.get(f"{HISTORY}?q=ada")
    history = response.context["history"]
    assert history.contact_id == ""
    assert history.companies == [("org-1", ""), ("org-2", "ic-new-2")]
    body = response.content.decode()
    assert "c-old" not in body and "ic-old-1" not in body and "not known yet" in body
    ContactLink.objects.create(workspace="ws-new", user_id="ada", contact_id="c-new")
    assert viewer_client.get(f"{HISTORY}?q=ada").context["history"].contact_id == "c-new"


def test_a_workspace_learned_with_another_token_is_not_shown(viewer_client, ada):
    IntercomStatus.objects.create(name="intercom", config_key="another-token", workspace_id="ws-old")
    ContactLink.objects.create(workspace="ws-old", user_id="ada", contact_id="c-old")
    assert viewer_client.get(f"{HISTORY}?q=ada").context["history"].contact_id == ""
