"""The overview: activity by state over 24 hours and 7 days with its charts, the backlog, the cap,
the connection to Intercom and the top failure reasons."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from forwarding.models import EventName, IntercomStatus, RateLimitWindow

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
LOG = reverse("admin:delivery_log")


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


def test_it_shows_the_last_success_and_the_rate_limit(admin_client):
    IntercomStatus.objects.create(name="intercom", last_success_at=timezone.now() - timedelta(minutes=2))
    RateLimitWindow.objects.create(name="intercom", limit=166, remaining=120)
    body = admin_client.get(INDEX).content.decode()
    assert "Connected." in body and "120 of 166" in body
    assert "auth-banner" not in body


def test_a_refused_token_raises_a_red_banner_on_every_page(admin_client):
    IntercomStatus.objects.create(name="intercom", auth_failed_at=timezone.now(), auth_error="401 Unauthorized")
    for url in [INDEX, LOG, reverse("admin:user_history"), reverse("admin:event_names")]:
        body = admin_client.get(url).content.decode()
        assert 'id="auth-banner"' in body, url
        assert "Intercom refuses the access token" in body and "401 Unauthorized" in body
    assert "Token refused" in admin_client.get(INDEX).content.decode()


def test_it_warns_when_intercom_refused_a_name_for_its_cap(admin_client):
    IntercomStatus.objects.create(name="intercom", cap_refused_at=timezone.now(), cap_refused_usage=97)
    body = admin_client.get(INDEX).content.decode()
    assert 'id="cap-refused"' in body and "counted 97 names" in body


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


def test_the_overview_costs_a_bounded_number_of_queries(viewer_client, calls, django_assert_max_num_queries):
    for n in range(50):
        calls(state=["delivered", "failed", "pending"][n % 3], error_cause="http_400" if n % 3 == 1 else "")
    viewer_client.get(INDEX)
    with django_assert_max_num_queries(16):
        assert viewer_client.get(INDEX).status_code == 200


def test_the_sidebar_links_the_relay_pages(viewer_client):
    body = viewer_client.get(INDEX).content.decode()
    for name in ["admin:index", "admin:delivery_log", "admin:user_history", "admin:event_names"]:
        assert f'href="{reverse(name)}"' in body
