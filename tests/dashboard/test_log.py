"""The delivery log: newest first, every filter and the exact search, keyset pages, and a bounded
number of queries that never counts the table."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from dashboard.queries.cursors import encode_cursor
from dashboard.queries.log import PAGE_SIZE
from forwarding.models import CallType, Source
from tests.dashboard.conftest import filtering_on_warned, plan_of

pytestmark = pytest.mark.django_db

LOG = reverse("admin:delivery_log")
# Session, user, permissions, the header's usage count, the banner, sources, the page itself.
LOG_QUERIES = 12


def shown(response):
    """The calls' ids on the page, in order."""
    return [row.call.pk for row in response.context["page"].rows]


@pytest.fixture
def mixed(calls):
    """One call of each kind the filters tell apart, oldest first."""
    other = Source.create_with_key("Backend")[0]
    now = timezone.now()
    return {
        "old": calls(received_at=now - timedelta(days=3), event="Old Thing"),
        "failed": calls(
            state="failed", event="Order Completed", last_status=400, error_cause="http_400", last_error="400 bad"
        ),
        "retrying": calls(state="pending", event="Order Completed", last_status=503, error_cause="http_503"),
        "page": calls(type=CallType.PAGE, event="Docs", user_id="bob"),
        "identify": calls(type=CallType.IDENTIFY, user_id="cleo", email="cleo@example.com", anonymous_id="anon-c"),
        "anonymous": calls(user_id="", anonymous_id="anon-9", state="waiting", event="Viewed Pricing"),
        "backend": calls(source=other, event="Invoice Paid", message_id="backend-msg-1"),
        "attributed": calls(user_id="", anonymous_id="anon-c", delivery_user_id="cleo", event="Before Signup"),
    }


def test_it_lists_every_call_newest_first(admin_client, mixed):
    response = admin_client.get(LOG)
    assert response.status_code == 200
    expected = sorted((c.received_at, c.pk) for c in mixed.values())
    assert shown(response) == [pk for _, pk in reversed(expected)]
    body = response.content.decode()
    assert "Order Completed" in body and "http_400" in body and "400 bad" in body


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("state=failed", ["failed"]),
        ("state=pending", ["retrying"]),
        ("state=waiting", ["anonymous"]),
        ("type=page", ["page"]),
        ("type=identify", ["identify"]),
        ("event=order+completed", ["retrying", "failed"]),  # case-insensitive, as Intercom
        ("event=viewed-page", ["page"]),  # the page event name
        ("status=400", ["failed"]),
        ("status=5xx", ["retrying"]),
        ("status=none", ["attributed", "backend", "anonymous", "identify", "page", "old"]),
        ("cause=http_503", ["retrying"]),
        ("user=cleo", ["attributed", "identify"]),  # anonymous calls attributed to cleo too
        ("range=24h&type=track&state=delivered", ["attributed", "backend"]),
        ("q=bob", ["page"]),  # userId
        ("q=anon-9", ["anonymous"]),  # anonymousId
        ("q=backend-msg-1", ["backend"]),  # messageId
        ("q=cleo@example.com", ["identify"]),  # email, and the user it belongs to
        ("q=nobody", []),
        ("state=failed&type=page", []),
    ],
)
def test_each_filter_shows_only_what_it_matches(admin_client, mixed, query, names):
    response = admin_client.get(f"{LOG}?{query}")
    assert response.status_code == 200
    assert response.context["problems"] == []
    assert shown(response) == [mixed[name].pk for name in names]


def test_the_source_and_time_filters(admin_client, mixed):
    source = mixed["backend"].source_id
    assert shown(admin_client.get(f"{LOG}?source={source}")) == [mixed["backend"].pk]
    old = mixed["old"].received_at
    since = (old - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    until = (old + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert shown(admin_client.get(f"{LOG}?since={since}&until={until}")) == [mixed["old"].pk]


def test_every_sidebar_link_renders(admin_client, mixed):
    response = admin_client.get(f"{LOG}?state=failed")
    for _, items in response.context["choices"]:
        for _, query, _ in items:
            assert admin_client.get(LOG + query).status_code == 200


def test_a_bad_filter_value_is_named_not_an_error(admin_client, mixed):
    response = admin_client.get(f"{LOG}?state=nonsense&status=abc&since=later")
    assert response.status_code == 200
    assert len(response.context["problems"]) == 3
    assert "Left out of the filter" in response.content.decode()
    assert len(shown(response)) == len(mixed)


def test_pages_follow_each_other_without_gaps_or_repeats(admin_client, calls):
    moment = timezone.now() - timedelta(minutes=5)
    # Some calls share a received_at: the id breaks the tie.
    made = [calls(received_at=moment + timedelta(seconds=n // 3)) for n in range(PAGE_SIZE * 2 + 7)]
    expected = [c.pk for c in sorted(made, key=lambda c: (c.received_at, c.pk), reverse=True)]
    first = admin_client.get(LOG)
    page = first.context["page"]
    assert page.newer is None and page.older
    seen = shown(first)
    second = admin_client.get(f"{LOG}?after={page.older}")
    third = admin_client.get(f"{LOG}?after={second.context['page'].older}")
    assert third.context["page"].older is None
    seen += shown(second) + shown(third)
    assert seen == expected
    # And back again from the last page.
    back = admin_client.get(f"{LOG}?before={third.context['page'].newer}")
    assert shown(back) == shown(second)
    top = admin_client.get(f"{LOG}?before={back.context['page'].newer}")
    assert shown(top) == shown(first)
    assert top.context["page"].newer is None


def test_pages_keep_the_filter(admin_client, calls):
    for n in range(2 * PAGE_SIZE + 6):
        calls(state="failed" if n % 2 else "delivered")
    first = admin_client.get(f"{LOG}?state=failed")
    assert first.context["older_url"].startswith(f"{LOG}?state=failed&after=")
    rest = admin_client.get(first.context["older_url"])
    states = {row.delivery.state for row in rest.context["page"].rows + first.context["page"].rows}
    assert states == {"failed"}


@pytest.mark.parametrize(
    "query", ["", "state=failed", "type=track", "event=signed+up", "status=4xx", "cause=http_400", "q=ada", "user=ada"]
)
def test_a_page_costs_a_bounded_number_of_queries_and_no_count(
    admin_client, calls, query, django_assert_max_num_queries
):
    for n in range(120):
        calls(
            user_id=f"user-{n % 7}", state="failed" if n % 3 else "delivered", last_status=400, error_cause="http_400"
        )
    admin_client.get(LOG)  # warm the session
    with django_assert_max_num_queries(LOG_QUERIES), CaptureQueriesContext(connection) as captured:
        response = admin_client.get(f"{LOG}?{query}")
    assert response.status_code == 200
    assert not [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "forwarding_call" in q["sql"]]


def test_viewers_see_no_bulk_resend_and_operators_do(viewer_client, operator_client, mixed):
    assert "Resend all matching" not in viewer_client.get(LOG).content.decode()
    body = operator_client.get(f"{LOG}?state=failed").content.decode()
    assert f'href="{reverse("admin:bulk_resend")}?state=failed"' in body


def test_a_staff_user_without_a_role_is_refused(client, db):
    from django.contrib.auth.models import User

    user = User.objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client.force_login(user)
    assert client.get(LOG).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(LOG)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_an_event_names_pages_merge_its_states_in_order(admin_client, calls):
    """A name's deliveries are read state by state from the index and merged: the pages must still
    be one sequence, newest first."""
    states = ["delivered", "failed", "held", "pending", "delivered", "suppressed", "waiting"]
    made = [calls(event="Busy Name", state=states[n % len(states)]) for n in range(2 * PAGE_SIZE + 9)]
    calls(event="Other Name")
    seen, url = [], f"{LOG}?event=busy+name"
    while url:
        response = admin_client.get(url)
        seen += shown(response)
        url = response.context["older_url"]
    assert seen == [c.pk for c in reversed(made)]
    middle = made[PAGE_SIZE + 9]
    back = admin_client.get(f"{LOG}?event=busy+name&before={encode_cursor(middle.received_at, middle.pk)}")
    assert shown(back) == [c.pk for c in reversed(made[PAGE_SIZE + 10 :])]


@pytest.fixture
def warned(calls):
    """Calls whose last attempt dropped, cut or renamed something, among others; oldest first."""
    now = timezone.now()
    return {
        "clean": calls(received_at=now - timedelta(minutes=50)),
        "old": calls(warned=True, warnings=["traits.a: dropped"], received_at=now - timedelta(days=3)),
        "delivered": calls(warned=True, warnings=["traits.b: cut"], received_at=now - timedelta(minutes=40)),
        "failed": calls(
            state="failed", warned=True, warnings=["traits.c: dropped"], received_at=now - timedelta(minutes=30)
        ),
        "other": calls(event="Other", warned=True, received_at=now - timedelta(minutes=20)),
        "clean2": calls(received_at=now - timedelta(minutes=10)),
    }


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("warned=1", ["other", "failed", "delivered", "old"]),
        ("warned=1&state=delivered", ["other", "delivered", "old"]),
        ("warned=1&state=delivered&range=24h", ["other", "delivered"]),
        ("warned=1&event=signed+up", ["failed", "delivered", "old"]),
        ("warned=1&user=ada&state=failed", ["failed"]),
        ("warned=1&q=ada", ["other", "failed", "delivered", "old"]),
        ("warned=0", ["clean2", "other", "failed", "delivered", "clean", "old"]),
    ],
)
def test_the_has_warnings_filter(admin_client, warned, query, names):
    response = admin_client.get(f"{LOG}?{query}")
    assert response.status_code == 200 and response.context["problems"] == []
    assert shown(response) == [warned[name].pk for name in names]


def test_the_has_warnings_filter_is_in_the_sidebar_and_kept_by_pages_and_forms(admin_client, warned):
    response = admin_client.get(f"{LOG}?state=delivered")
    [items] = [items for title, items in response.context["choices"] if title == "warnings"]
    assert [(label, selected) for label, _, selected in items] == [("All", True), ("Has warnings", False)]
    link = items[1][1]
    assert link == "?state=delivered&warned=1"
    body = response.content.decode()
    assert "By warnings" in body and f'href="{escape(link)}"' in body
    filtered = admin_client.get(LOG + link)
    assert filtered.context["description"] == "state delivered, has warnings"
    page = filtered.content.decode()
    assert '<input type="hidden" name="warned" value="1">' in page  # the search and typed forms keep it
    assert 'class="warned-tag"' in page
    [items] = [items for title, items in filtered.context["choices"] if title == "warnings"]
    assert items[0][1] == "?state=delivered" and items[1][2] is True


def test_a_bad_has_warnings_value_is_named(admin_client, warned):
    response = admin_client.get(f"{LOG}?warned=maybe")
    assert response.context["problems"] == ["warned: 'maybe' is not 1 or 0"]
    assert len(shown(response)) == len(warned)


@pytest.mark.parametrize("query", ["warned=1", "warned=1&state=delivered&range=24h", "warned=1&after=1"])
def test_the_has_warnings_filter_reads_its_partial_index_newest_first(admin_client, calls, query):
    for n in range(60):
        calls(warned=n % 4 == 0, state="failed" if n % 5 == 0 else "delivered")
    admin_client.get(LOG)
    page = admin_client.get(f"{LOG}?warned=1")
    cursor = page.context["page"].older or encode_cursor(timezone.now(), 1)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(f"{LOG}?{query.replace('after=1', f'after={cursor}')}")
    assert response.status_code == 200
    [sql] = filtering_on_warned(captured)
    assert sql.count("ORDER BY") == 1 and '"created_at" DESC' in sql.split("ORDER BY")[1]
    assert "delivery_warned" in plan_of(sql), plan_of(sql)


def test_a_warned_page_costs_a_bounded_number_of_queries(admin_client, calls, django_assert_max_num_queries):
    for n in range(120):
        calls(warned=n % 2 == 0)
    admin_client.get(LOG)
    with django_assert_max_num_queries(LOG_QUERIES), CaptureQueriesContext(connection) as captured:
        response = admin_client.get(f"{LOG}?warned=1&state=delivered")
    assert len(response.context["page"].rows) == PAGE_SIZE
    assert not [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "forwarding_call" in q["sql"]]
