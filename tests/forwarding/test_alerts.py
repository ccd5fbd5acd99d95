"""Alerts reach a local receiver: a fire when a rule becomes true, no repeat within the hour, a
repeat after it, a resolve when it clears; the Slack shape, the HMAC signature, failures recorded
and never raised, the dashboard's "send test", and the operators-only actions."""

import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from forwarding import alerts, intercom, tasks
from forwarding.delivery import connection
from forwarding.models import (
    AlertRule,
    AlertState,
    AlertTarget,
    Attempt,
    DataAttribute,
    EventName,
    IntercomStatus,
    SentAlert,
)
from tests.dashboard.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

SECRET = "a-signing-secret-for-the-tests"


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, recording every POST; answers `status`."""

    def __init__(self):
        self.received = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"path": self.path, "headers": self.headers, "body": body})
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"nope" if receiver.status >= 300 else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def at(self, path):
        return [r for r in self.received if r["path"] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def targets(receiver):
    slack = AlertTarget.objects.create(name="Slack", kind="slack", url=f"{receiver.url}/slack/T0/B0/XYZ")
    signed = AlertTarget.objects.create(name="Pager", kind="json", url=f"{receiver.url}/json", secret=SECRET)
    return slack, signed


def intercom_status(**fields):
    IntercomStatus.objects.update_or_create(
        name="intercom", defaults={"config_key": connection.config_key(), "base_url": intercom.base_url(), **fields}
    )


def events():
    return list(SentAlert.objects.order_by("id").values_list("target_name", "event"))


def test_a_rule_fires_once_repeats_after_an_hour_and_resolves(receiver, targets):
    now = timezone.now()
    intercom_status(unreachable_since=now - timedelta(minutes=5), failure_error="timeout after 20 s")
    assert alerts.evaluate(now) == {}  # 5 minutes: under the threshold of 10
    assert receiver.received == []

    fired_at = now + timedelta(minutes=6)
    assert alerts.evaluate(fired_at) == {"unreachable": "fire"}
    assert len(receiver.at("/slack/T0/B0/XYZ")) == len(receiver.at("/json")) == 1
    state = AlertState.objects.get(rule__kind="unreachable")
    assert state.firing_since == fired_at and state.last_sent_at == fired_at
    assert "timeout after 20 s" in state.detail

    assert alerts.evaluate(fired_at + timedelta(minutes=30)) == {}  # no repeat within the hour
    assert alerts.evaluate(fired_at + timedelta(minutes=59)) == {}
    assert len(receiver.received) == 2

    assert alerts.evaluate(fired_at + timedelta(minutes=61)) == {"unreachable": "repeat"}
    assert len(receiver.received) == 4
    assert "STILL FIRING" in json.loads(receiver.at("/slack/T0/B0/XYZ")[-1]["body"])["text"]

    intercom_status(unreachable_since=None)
    cleared = fired_at + timedelta(minutes=70)
    assert alerts.evaluate(cleared) == {"unreachable": "resolve"}
    resolve = json.loads(receiver.at("/json")[-1]["body"])
    assert resolve["event"] == "resolve" and resolve["rule"] == "unreachable"
    state.refresh_from_db()
    assert state.firing_since is None and state.resolved_at == cleared
    assert alerts.evaluate(cleared + timedelta(minutes=1)) == {}
    assert events() == [(target, e) for e in ("fire", "repeat", "resolve") for target in ("Pager", "Slack")]
    assert all(alert.ok for alert in SentAlert.objects.all())


def test_the_slack_target_gets_a_text_and_the_json_target_a_signed_body(receiver, targets):
    now = timezone.now()
    intercom_status(unreachable_since=now - timedelta(minutes=11))
    alerts.evaluate(now)
    slack = receiver.at("/slack/T0/B0/XYZ")[0]
    assert json.loads(slack["body"]).keys() == {"text"}
    text = json.loads(slack["body"])["text"]
    assert text.startswith("[Intercom Relay] FIRING: Intercom unreachable.") and "threshold 10 min" in text
    assert "X-Relay-Signature" not in slack["headers"]

    signed = receiver.at("/json")[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), signed["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signed["headers"]["X-Relay-Signature"], expected)
    body = json.loads(signed["body"])
    assert signed["headers"]["X-Relay-Timestamp"] == str(body["timestamp"])
    assert abs(body["timestamp"] - now.timestamp()) < 60
    assert body["event"] == "fire" and body["rule"] == "unreachable" and body["threshold"] == 10
    assert SECRET not in signed["body"].decode()


def test_a_failing_target_is_recorded_and_the_others_still_receive(receiver, targets, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    AlertTarget.objects.create(name="Gone", kind="slack", url=f"http://127.0.0.1:{closed}/secret-path/abc")
    intercom_status(unreachable_since=timezone.now() - timedelta(hours=1))
    receiver.status = 500
    assert alerts.evaluate() == {"unreachable": "fire"}
    rows = {row.target_name: row for row in SentAlert.objects.all()}
    assert rows["Slack"].status_code == 500 and rows["Slack"].error.startswith("HTTP 500") and not rows["Slack"].ok
    assert rows["Gone"].status_code is None and "ConnectionError" in rows["Gone"].error
    assert "secret-path" not in rows["Gone"].error and "secret-path" not in caplog.text
    assert len(receiver.received) == 2  # Slack and Pager were both tried


def test_a_disabled_target_or_rule_gets_nothing(receiver, targets):
    AlertTarget.objects.filter(name="Slack").update(enabled=False)
    intercom_status(unreachable_since=timezone.now() - timedelta(hours=1))
    alerts.evaluate()
    assert [r["path"] for r in receiver.received] == ["/json"]
    AlertRule.objects.filter(kind="unreachable").update(enabled=False)
    assert alerts.evaluate() == {}  # switched off while firing: cleared without a message
    assert AlertState.objects.get(rule__kind="unreachable").firing_since is None
    assert len(receiver.received) == 1


def conditions(make_call, settings):
    """{rule kind: a function making it true}."""
    now = timezone.now()

    def attempts():
        call = make_call(state="pending")
        for n in range(20):
            outcome, status = ("retry", 503) if n < 5 else ("delivered", 202)
            Attempt.objects.create(delivery=call.delivery, outcome=outcome, status=status, started_at=now)

    def backlog():
        call = make_call(state="pending")
        type(call.delivery).objects.filter(pk=call.pk).update(next_attempt_at=now - timedelta(minutes=20))

    def event_names():
        settings.INTERCOM_EVENT_NAME_LIMIT = 10
        for n in range(9):
            EventName.objects.create(key=f"n{n}", name=f"N{n}", slot_used_at=now)

    def attribute_slots():
        settings.INTERCOM_ATTRIBUTE_LIMIT = 10
        intercom_status(workspace_id="ws")
        for n in range(9):
            DataAttribute.objects.create(workspace="ws", model="contact" if n % 2 else "company", name=f"a{n}")

    return {
        "auth_failed": lambda: intercom_status(auth_failed_at=now, auth_error="401 Unauthorized"),
        "unreachable": lambda: intercom_status(unreachable_since=now - timedelta(minutes=10)),
        "failure_rate": attempts,
        "backlog_age": backlog,
        "event_name_slots": event_names,
        "attribute_slots": attribute_slots,
        "names_held": lambda: EventName.objects.create(key="paid", name="Paid", held_count=3),
    }


@pytest.mark.parametrize("kind", list(alerts.RULES))
def test_each_rule_fires_on_its_condition_alone(receiver, targets, make_call, settings, kind):
    conditions(make_call, settings)[kind]()
    assert alerts.evaluate() == {kind: "fire"}
    assert AlertState.objects.get(rule__kind=kind).detail


def test_a_rule_under_its_threshold_stays_quiet(receiver, targets, make_call, settings):
    conditions(make_call, settings)["failure_rate"]()  # 5 of 20 failed: 25%
    AlertRule.objects.filter(kind="failure_rate").update(threshold=26)
    assert alerts.evaluate() == {}
    AlertRule.objects.filter(kind="failure_rate").update(threshold=25)
    assert alerts.evaluate() == {"failure_rate": "fire"}


def test_a_failing_check_or_evaluation_never_raises(receiver, targets, monkeypatch):
    intercom_status(unreachable_since=timezone.now() - timedelta(hours=1))

    def broken(rule, facts):
        raise RuntimeError("a bug in a check")

    monkeypatch.setitem(alerts.CHECKS, "auth_failed", broken)
    assert alerts.evaluate() == {"unreachable": "fire"}  # the other rules are still checked
    monkeypatch.setattr(alerts, "rules", lambda: 1 / 0)
    assert alerts.evaluate() == {}


def test_the_sweeper_task_evaluates_the_alerts_and_never_raises_for_them(receiver, targets, monkeypatch):
    monkeypatch.setattr(tasks.sweeper, "sweep_for", lambda seconds, interval: {"enqueued": 0})
    intercom_status(unreachable_since=timezone.now() - timedelta(hours=1))
    assert tasks.sweep() == {"enqueued": 0}
    assert SentAlert.objects.filter(event="fire").count() == 2
    monkeypatch.setattr(alerts, "_evaluate", lambda now: 1 / 0)
    assert tasks.sweep() == {"enqueued": 0}


# -- the dashboard's actions ---------------------------------------------------------------------


def test_send_test_posts_a_test_message_and_is_logged(receiver, targets):
    operator = make_user("otto", "Operators")
    slack, signed = targets
    response = client_for(operator).post(reverse("admin:alert_target_test", args=[signed.pk]))
    assert response.status_code == 302
    body = json.loads(receiver.at("/json")[0]["body"])
    assert body["event"] == "test" and "by otto" in body["text"]
    sent = SentAlert.objects.get()
    assert sent.event == "test" and sent.target == signed and sent.ok and sent.rule is None
    assert LogEntry.objects.filter(object_id=str(signed.pk), change_message__contains="test alert").exists()


def test_a_viewer_cannot_act(receiver, targets):
    viewer = client_for(make_user("vera", "Viewers"))
    slack, _ = targets
    rule = AlertRule.objects.get(kind="unreachable")
    posts = [
        (reverse("admin:alert_target_add"), {"name": "x", "kind": "slack", "url": "https://example.com/x"}),
        (reverse("admin:alert_target_toggle", args=[slack.pk]), {}),
        (reverse("admin:alert_target_test", args=[slack.pk]), {}),
        (reverse("admin:alert_target_delete", args=[slack.pk]), {}),
        (reverse("admin:alert_rule_edit", args=[rule.pk]), {"threshold": "1", "enabled": "1"}),
    ]
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, url
    assert viewer.get(reverse("admin:alerts")).status_code == 200
    assert receiver.received == [] and AlertTarget.objects.count() == 2
    assert AlertTarget.objects.get(pk=slack.pk).enabled and AlertRule.objects.get(pk=rule.pk).threshold == 10
