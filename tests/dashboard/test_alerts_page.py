"""The alerts page: targets (added, enabled or disabled, deleted; secrets and webhook URLs never
shown back in full), the rules with their thresholds and state, the latest alerts sent; operators
act, viewers read, every change in the admin log."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, DELETION, LogEntry
from django.urls import reverse
from django.utils import timezone

from forwarding import alerts
from forwarding.models import AlertRule, AlertState, AlertTarget, SentAlert

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:alerts")
HOOK = "https://hooks.example.com/services/T000/B000/very-secret-hook"


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def section(body, element_id):
    start = body.index(f'id="{element_id}"')
    return body[start : body.index("</section>", start)]


@pytest.fixture
def target(db):
    return AlertTarget.objects.create(name="Ops channel", kind="slack", url=HOOK)


def test_a_viewer_reads_the_rules_targets_and_alerts_sent_without_forms(viewer_client, target):
    SentAlert.objects.create(target=target, target_name=target.name, event="test", status_code=200, body="{}")
    body = viewer_client.get(PAGE).content.decode()
    rules = section(body, "alert-rules")
    assert rules.count('class="alert-rule"') == len(alerts.RULES)
    assert 'data-kind="unreachable"' in rules and "10 minutes" in text(rules)
    assert 'data-kind="failure_rate"' in rules and "25 %" in text(rules)
    assert "Ops channel" in section(body, "alert-targets")
    assert "Test" in text(section(body, "alerts-sent"))
    assert "action-save-rule" not in body and 'id="add-target"' not in body and "action-test" not in body
    assert "No rule fires." in body


def test_an_operator_gets_the_forms(operator_client, target):
    body = operator_client.get(PAGE).content.decode()
    assert body.count("action-save-rule") == len(alerts.RULES)
    assert 'id="add-target"' in body and "action-test" in body and "action-delete" in body


def test_a_webhook_url_and_a_secret_are_never_shown_back_in_full(operator_client, target):
    AlertTarget.objects.create(name="Pager", kind="json", url="https://pager.example.com/in", secret="s3cr3t-value-x")
    body = operator_client.get(PAGE).content.decode()
    assert "very-secret-hook" not in body and "B000" not in body
    assert "https://hooks.example.com/…hook" in body
    assert "s3cr3t-value-x" not in body and "s3cr…" in body


def test_adding_a_slack_target(operator_client):
    response = operator_client.post(reverse("admin:alert_target_add"), {"name": "Ops", "kind": "slack", "url": HOOK})
    assert response.status_code == 200
    created = AlertTarget.objects.get()
    assert (created.name, created.kind, created.url, created.secret, created.enabled) == (
        "Ops",
        "slack",
        HOOK,
        "",
        True,
    )
    assert 'id="created-target"' in response.content.decode()
    assert 'id="created-secret"' not in response.content.decode()
    assert LogEntry.objects.get(object_id=str(created.pk)).action_flag == ADDITION


def test_a_signed_json_target_gets_a_secret_shown_once(operator_client):
    response = operator_client.post(
        reverse("admin:alert_target_add"), {"name": "Pager", "kind": "json", "url": "https://pager.example.com/in"}
    )
    created = AlertTarget.objects.get()
    assert len(created.secret) >= 32
    assert created.secret in response.content.decode()  # this once
    assert created.secret not in operator_client.get(PAGE).content.decode()
    assert created.secret not in LogEntry.objects.get().change_message
    operator_client.post(
        reverse("admin:alert_target_add"),
        {"name": "Own", "kind": "json", "url": "https://pager.example.com/2", "secret": "my-own-secret"},
    )
    assert AlertTarget.objects.get(name="Own").secret == "my-own-secret"


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "kind": "slack", "url": HOOK},
        {"name": "x", "kind": "carrier-pigeon", "url": HOOK},
        {"name": "x", "kind": "slack", "url": "ftp://example.com/x"},
        {"name": "x", "kind": "slack", "url": "not a url"},
    ],
)
def test_a_refused_target_form_says_why(operator_client, data):
    response = operator_client.post(reverse("admin:alert_target_add"), data)
    assert response.status_code == 400
    assert 'id="target-errors"' in response.content.decode()
    assert not AlertTarget.objects.exists()


def test_disabling_enabling_and_deleting_a_target(operator_client, target):
    toggle = reverse("admin:alert_target_toggle", args=[target.pk])
    assert operator_client.post(toggle).status_code == 302
    assert not AlertTarget.objects.get().enabled
    assert 'data-enabled="false"' in section(operator_client.get(PAGE).content.decode(), "alert-targets")
    operator_client.post(toggle)
    assert AlertTarget.objects.get().enabled
    SentAlert.objects.create(target=target, target_name=target.name, event="test", status_code=200)
    assert operator_client.post(reverse("admin:alert_target_delete", args=[target.pk])).status_code == 302
    assert not AlertTarget.objects.exists()
    assert SentAlert.objects.get().target_name == "Ops channel"  # the log stays
    messages = list(LogEntry.objects.order_by("id").values_list("action_flag", "change_message"))
    assert [m for _, m in messages][:2] == [
        "Disabled the alert target 'Ops channel'.",
        "Enabled the alert target 'Ops channel'.",
    ]
    assert messages[-1][0] == DELETION
    assert operator_client.post(toggle).status_code == 404


def test_an_operator_edits_a_rule(operator_client):
    alerts.rules()
    rule = AlertRule.objects.get(kind="backlog_age")
    url = reverse("admin:alert_rule_edit", args=[rule.pk])
    assert operator_client.post(url, {"threshold": "30"}).status_code == 302  # no "enabled": switched off
    rule.refresh_from_db()
    assert (rule.threshold, rule.enabled) == (30, False)
    entry = LogEntry.objects.get()
    assert entry.change_message == "Alert rule 'Oldest due delivery': threshold 15 → 30 minutes, disabled."
    body = operator_client.get(PAGE).content.decode()
    assert 'data-kind="backlog_age" data-enabled="false"' in body


@pytest.mark.parametrize(("kind", "threshold"), [("unreachable", "0"), ("failure_rate", "101"), ("backlog_age", "x")])
def test_a_refused_threshold_changes_nothing(operator_client, kind, threshold):
    alerts.rules()
    rule = AlertRule.objects.get(kind=kind)
    response = operator_client.post(reverse("admin:alert_rule_edit", args=[rule.pk]), {"threshold": threshold})
    assert response.status_code == 400
    assert "Not changed" in response.content.decode()
    assert AlertRule.objects.get(pk=rule.pk).threshold == rule.threshold
    assert not LogEntry.objects.exists()


def test_a_rule_without_threshold_is_only_switched(operator_client):
    alerts.rules()
    rule = AlertRule.objects.get(kind="auth_failed")
    operator_client.post(reverse("admin:alert_rule_edit", args=[rule.pk]), {"threshold": "999"})
    rule.refresh_from_db()
    assert (rule.threshold, rule.enabled) == (0, False)


def test_the_firing_rules_and_the_latest_alerts_sent(viewer_client, target):
    alerts.rules()
    since = timezone.now() - timedelta(minutes=12)
    AlertState.objects.filter(rule__kind="unreachable").update(
        firing_since=since, last_sent_at=since, detail="no answer since 12 min"
    )
    rule = AlertRule.objects.get(kind="unreachable")
    SentAlert.objects.bulk_create(
        SentAlert(rule=rule, target=target, target_name=target.name, event="fire", status_code=200) for _ in range(105)
    )
    SentAlert.objects.create(rule=rule, target=target, target_name=target.name, event="repeat", error="HTTP 500: x")
    body = viewer_client.get(PAGE).content.decode()
    firing = section(body, "alert-status")
    assert 'data-kind="unreachable"' in firing and "no answer since 12 min" in firing
    sent = section(body, "alerts-sent")
    assert sent.count('class="sent-alert') == 100
    assert 'data-ok="false"' in sent and "HTTP 500: x" in sent


def test_the_page_costs_a_bounded_number_of_queries(viewer_client, target, django_assert_max_num_queries):
    alerts.rules()
    for _ in range(20):
        SentAlert.objects.create(target=target, target_name=target.name, event="test", status_code=200)
    with django_assert_max_num_queries(20):
        assert viewer_client.get(PAGE).status_code == 200
