"""The overview: activity by state over 24 hours and 7 days with its charts, the backlog, the cap,
the connection to Intercom and the top failure reasons."""

import re
from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from forwarding import intercom
from forwarding.delivery import connection
from forwarding.models import EventName, IntercomStatus, RateLimitWindow
from tests.dashboard.conftest import filtering_on_warned, plan_of

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
LOG = reverse("admin:delivery_log")
ATTRIBUTES = reverse("admin:data_attributes")


def window(response, key):
    return next(w for w in response.context["windows"] if w["range"] == key)


def card(response, key, name):
    return next(c for c in window(response, key)["cards"] if c["key"] == name)


def test_it_counts_calls_by_the_state_of_their_delivery(admin_client, calls):
    now = timezone.now()
    for state in ["delivered", "delivered", "failed", "waiting", "held", "suppressed", "skipped", "pending"]:
        calls(state=state, received_at=now - timedelta(minutes=30))
    calls(state="delivered", received_at=now - timedelta(days=3))
    calls(state="failed", received_at=now - timedelta(days=10))  # outside both windows
    response = admin_client.get(INDEX)
    assert response.status_code == 200
    day = {c["key"]: c["value"] for c in window(response, "24h")["cards"]}
    assert day == {
        "received": 8,
        "delivered": 2,
        "in_progress": 1,
        "waiting": 1,
        "held": 1,
        "suppressed": 1,
        "skipped": 1,
        "failed": 1,
    }
    week = {c["key"]: c["value"] for c in window(response, "7d")["cards"]}
    assert (week["received"], week["delivered"], week["failed"]) == (9, 3, 1)


def test_each_chart_has_a_bar_per_hour_or_day_that_opens_the_log(admin_client, calls):
    # Now, not a minute ago: a minute ago is in the previous hour's bar during the first minute of an hour.
    calls(state="failed", received_at=timezone.now())
    response = admin_client.get(INDEX)
    day, week = window(response, "24h")["chart"], window(response, "7d")["chart"]
    assert (len(day.bars), len(week.bars)) == (24, 7)
    latest = day.bars[-1]
    assert [s.group for s in latest.segments] == ["failed"]
    assert latest.href.startswith(f"{LOG}?since=") and "&until=" in latest.href
    body = response.content.decode()
    assert body.count('<a href="/admin/log/?since=') >= 31
    assert 'class="segment fill-failed"' in body
    # The bar's link shows that hour's calls.
    assert len(admin_client.get(latest.href).context["page"].rows) == 1


def test_every_card_opens_the_log_filtered_to_it(admin_client, calls):
    calls(state="held")
    response = admin_client.get(INDEX)
    for entry in window(response, "24h")["cards"]:
        rows = admin_client.get(entry["href"]).context["page"].rows
        assert len(rows) == entry["value"], entry


def test_it_shows_the_backlog_and_the_age_of_the_oldest_due_delivery(admin_client, calls):
    now = timezone.now()
    oldest = calls(state="pending", next_attempt_at=now - timedelta(minutes=7))
    calls(state="pending", next_attempt_at=now - timedelta(minutes=1))
    calls(state="pending", next_attempt_at=now + timedelta(hours=1))  # not due yet
    calls(state="delivering")
    response = admin_client.get(INDEX)
    backlog = response.context["backlog"]
    assert (backlog.size, backlog.due, backlog.oldest_due["pk"]) == (4, 2, oldest.pk)
    assert re.search(r'id="oldest-due-age">7\xa0minutes', response.content.decode())


def test_it_shows_the_cap_gauge(admin_client, settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 4
    for n in range(3):
        EventName.objects.create(key=f"e{n}", name=f"E{n}", slot_used_at=timezone.now())
    response = admin_client.get(INDEX)
    body = response.content.decode()
    assert response.context["usage_level"] == "amber"
    assert 'aria-valuenow="3"' in body and "75% of Intercom" in body


def status(**fields):
    """The status row of the configured connection (base URL and token)."""
    fields.setdefault("config_key", connection.config_key())
    fields.setdefault("base_url", intercom.base_url())
    return IntercomStatus.objects.create(name="intercom", **fields)


def box(client):
    """The overview's Intercom box, as text, and its status key."""
    response = client.get(INDEX)
    body = response.content.decode()
    section = body[body.index('id="intercom-status"') :]
    section = section[: section.index("</section>")]
    return response.context["connection"][0], re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


def test_it_shows_the_last_success_the_workspace_and_the_rate_limit(admin_client, settings):
    status(last_success_at=timezone.now() - timedelta(minutes=2), workspace_id="abc123", workspace_name="Acme Support")
    RateLimitWindow.objects.create(name="intercom", limit=166, remaining=120)
    key, text = box(admin_client)
    assert key == "ok"
    assert "Connected." in text and "120 of 166" in text
    assert "Acme Support abc123" in text and intercom.base_url() in text
    body = admin_client.get(INDEX).content.decode()
    assert "auth-banner" not in body and "unreachable-banner" not in body
    assert settings.INTERCOM_ACCESS_TOKEN not in body


def test_without_a_status_row_intercom_has_not_been_contacted_yet(admin_client):
    key, text = box(admin_client)
    assert key == "unknown"
    assert "Not contacted yet" in text and "Connected" not in text
    assert intercom.base_url() in text and "not known yet" in text


def test_a_status_of_another_configuration_is_not_shown(admin_client):
    # Another base URL or token: its success, refusal and workspace say nothing of this one.
    status(
        config_key="another-configuration",
        base_url="https://api.eu.intercom.io",
        workspace_id="old-ws",
        last_success_at=timezone.now(),
        auth_failed_at=timezone.now(),
        unreachable_since=timezone.now(),
    )
    key, text = box(admin_client)
    assert key == "unknown"
    assert "Not contacted yet" in text and "Connected" not in text and "old-ws" not in text
    assert "api.eu.intercom.io" not in text
    body = admin_client.get(LOG).content.decode()
    assert "auth-banner" not in body and "unreachable-banner" not in body


def test_unreachable_intercom_is_amber_in_the_box_and_on_every_page(admin_client):
    since = timezone.now() - timedelta(minutes=20)
    status(
        last_success_at=since - timedelta(minutes=1),
        unreachable_since=since,
        last_failure_at=timezone.now(),
        failure_error="connection refused",
        failures=7,
    )
    key, text = box(admin_client)
    assert key == "warn"
    assert f"Unreachable since {since:%Y-%m-%d %H:%M} UTC (connection refused)" in text
    assert "Connected" not in text and "7 in a row" in text
    for url in [INDEX, LOG, reverse("admin:user_history"), reverse("admin:event_names"), ATTRIBUTES]:
        body = admin_client.get(url).content.decode()
        assert 'id="unreachable-banner"' in body, url
        banner = re.sub(r"\s+", " ", body[body.index('id="unreachable-banner"') :][:600])
        assert f"Intercom unreachable since {since:%Y-%m-%d %H:%M} UTC</strong> (connection refused)" in banner
        assert 'id="auth-banner"' not in body


def test_a_refused_token_raises_a_red_banner_on_every_page(admin_client):
    # Refused wins over unreachable: the amber banner is not shown beside the red one.
    status(auth_failed_at=timezone.now(), auth_error="401 Unauthorized", unreachable_since=timezone.now())
    for url in [INDEX, LOG, reverse("admin:user_history"), reverse("admin:event_names"), ATTRIBUTES]:
        body = admin_client.get(url).content.decode()
        assert 'id="auth-banner"' in body, url
        assert "Intercom refuses the access token" in body and "401 Unauthorized" in body
        assert 'id="unreachable-banner"' not in body
    key, text = box(admin_client)
    assert key == "bad" and "Token refused" in text and "Connected" not in text


def test_a_status_row_without_a_success_yet_is_not_connected(admin_client):
    status(workspace_id="ws-1", last_failure_at=timezone.now(), failure_error="503 busy", failures=1)
    key, text = box(admin_client)
    assert key == "unknown"
    assert "No success yet" in text and "Connected" not in text and "503 busy" in text


def test_it_warns_when_intercom_refused_a_name_for_its_cap(admin_client):
    status(cap_refused_at=timezone.now(), cap_refused_usage=97)
    body = admin_client.get(INDEX).content.decode()
    assert 'id="cap-refused"' in body and "counted 97 names" in body


def test_it_counts_calls_delivered_with_data_dropped_and_links_to_them(admin_client, calls):
    now = timezone.now()
    recent = [calls(warned=True, received_at=now - timedelta(hours=n + 1)) for n in range(2)]
    older = calls(warned=True, received_at=now - timedelta(days=3))
    calls(warned=True, received_at=now - timedelta(days=9))  # outside both windows
    calls(warned=True, state="failed", received_at=now - timedelta(hours=2))  # not delivered
    calls(received_at=now - timedelta(hours=3))  # delivered without warnings
    response = admin_client.get(INDEX)
    dropped = {entry["key"]: entry for entry in response.context["dropped"]}
    assert (dropped["24h"]["value"], dropped["7d"]["value"]) == (2, 3)
    body = response.content.decode()
    assert re.search(r'id="dropped-24h" data-count="2">\s*<span class="card-value">2</span>', body)
    assert "Delivered with data dropped" in body
    for key, expected in [("24h", recent), ("7d", [*recent, older])]:
        href = dropped[key]["href"]
        assert href.startswith(f"{LOG}?state=delivered&since=") and href.endswith("&warned=1")
        assert f'href="{escape(href)}"' in body
        page = admin_client.get(href)
        assert page.context["description"].startswith("state delivered, has warnings, since ")
        assert [row.call.pk for row in page.context["page"].rows] == [c.pk for c in expected]


def test_the_dropped_data_counts_are_one_query_on_the_partial_index(admin_client, calls):
    for n in range(60):
        calls(warned=n % 3 == 0, state="failed" if n % 4 == 0 else "delivered")
    admin_client.get(INDEX)
    with CaptureQueriesContext(db) as captured:
        response = admin_client.get(INDEX)
    assert [entry["value"] for entry in response.context["dropped"]] == [15, 15]
    [sql] = filtering_on_warned(captured)
    assert "COUNT(" in sql.upper()
    assert "delivery_warned" in plan_of(sql), plan_of(sql)


def test_top_failure_reasons_are_grouped_by_cause_and_link_to_the_log(admin_client, calls):
    for _ in range(3):
        calls(state="failed", error_cause="http_400", last_error="400 bad attribute")
    calls(state="failed", error_cause="timeout", last_error="timeout")
    calls(state="pending", error_cause="http_503")  # still retrying: not a failure yet
    response = admin_client.get(INDEX)
    causes = [(c["error_cause"], c["n"]) for c in response.context["causes"]]
    assert causes == [("http_400", 3), ("timeout", 1)]
    top = response.context["causes"][0]
    rows = admin_client.get(top["href"]).context["page"].rows
    assert len(rows) == 3 and {r.delivery.error_cause for r in rows} == {"http_400"}
    assert "400 bad attribute" in response.content.decode()


def test_top_failure_reasons_come_from_the_tallies_with_the_newest_example(admin_client, calls):
    now = timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=7)  # the window's first hour
    calls(state="failed", error_cause="http_400", last_error="400 older", received_at=now - timedelta(hours=2))
    calls(state="failed", error_cause="http_400", last_error="400 newest", received_at=now - timedelta(hours=1))
    calls(state="failed", error_cause="timeout", last_error="timed out", received_at=start + timedelta(minutes=1))
    calls(state="failed", error_cause="timeout", last_error="too old", received_at=start - timedelta(minutes=1))
    admin_client.get(INDEX)
    with CaptureQueriesContext(db) as captured:
        response = admin_client.get(INDEX)
    causes = {c["error_cause"]: (c["n"], c["example"]) for c in response.context["causes"]}
    assert causes == {"http_400": (2, "400 newest"), "timeout": (1, "timed out")}
    for cause in response.context["causes"]:  # the log behind each count shows as many
        rows = admin_client.get(cause["href"]).context["page"].rows
        assert len(rows) == cause["n"], cause
    # Counted from the tallies: no statement groups the failed deliveries.
    grouped = [q["sql"] for q in captured if "GROUP BY" in q["sql"] and 'FROM "forwarding_delivery"' in q["sql"]]
    assert grouped == []


def test_the_overview_costs_a_bounded_number_of_queries(viewer_client, calls, django_assert_max_num_queries):
    for n in range(50):
        calls(state=["delivered", "failed", "pending"][n % 3], error_cause="http_400" if n % 3 == 1 else "")
    viewer_client.get(INDEX)
    with django_assert_max_num_queries(18):
        assert viewer_client.get(INDEX).status_code == 200


def test_the_sidebar_links_the_relay_pages(viewer_client):
    body = viewer_client.get(INDEX).content.decode()
    for name in ["admin:index", "admin:delivery_log", "admin:user_history", "admin:event_names"]:
        assert f'href="{reverse(name)}"' in body
